/** The one error type of the inspection stage: bad input to a cache, a measure or an intervention, named. */
export class InspectError extends Error {
  override name = "InspectError";
}
