/**
 * The measures a run recorded while it sampled (clips/NNNN.measures.json, see clip_measures.ts), summed up for
 * the run report: guidance by region per step averaged over the clips, and identity drift over the clips.
 * Each applies only when the run recorded it (guidance: a guided run; identity: `--measure identity`).
 */
import type { ClipMeasures } from "../stages/generate/clip_measures.ts";
import { type IdentityDrift, identityDrift } from "../stages/inspect/identity.ts";
import { drawFigure } from "../viz/draw.ts";
import type { VizFigure } from "../viz/figure.ts";
import { describeGuidanceRegions, describeIdentityDrift } from "../viz/inspect_figures.ts";

/** A region's value at one step, or overall: null where its mask is empty. */
export interface GuidanceValue {
  condDelta: number | null;
  update: number | null;
}

/** Guidance by region over a run. */
export interface GuidanceSummary {
  /** The clips that carry it (all finished clips, unless the run was resumed from a version without it). */
  clips: number[];
  /** Regions in recorded order (lip, face, background). */
  regions: string[];
  /** Per step and region: the mean over `clips` of the clip's value (masks' frame means). */
  rows: ({ step: number; region: string } & GuidanceValue)[];
  /** Per region: the mean over every step of every clip. */
  mean: Record<string, GuidanceValue>;
}

/** Identity drift over a run: `identityDrift` of the clips' bank shares, and each site's per-clip mean. */
export interface IdentitySummary extends IdentityDrift {
  sites: string[];
  /** Per site: the mean over the clip's steps, per clip. */
  perSite: Record<string, number[]>;
}

/** Mean of the finite values (null when there is none: an empty mask). */
function meanOf(xs: readonly (number | null)[]): number | null {
  const v = xs.filter((x): x is number => x !== null && Number.isFinite(x));
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
}

/**
 * Guidance by region of the clips that recorded it, or undefined when none did (e.g. cfg <= 1).
 *
 * @example
 * ```ts ignore
 * const g = summarizeGuidance(await readRunMeasures("out.run"));
 * console.log(g?.mean.lip, g?.mean.background); // { condDelta, update } over every step of every clip
 * ```
 */
export function summarizeGuidance(clips: readonly (ClipMeasures | undefined)[]): GuidanceSummary | undefined {
  const measured = clips.flatMap((c, i) => (c?.guidance?.length ? [{ clip: i, rows: c.guidance }] : []));
  if (!measured.length) return undefined;
  const regions = [...new Set(measured.flatMap((c) => c.rows.map((r) => r.region)))];
  const steps = [...new Set(measured.flatMap((c) => c.rows.map((r) => r.step)))].sort((a, b) => a - b);
  const all = measured.flatMap((c) => c.rows);
  const at = (step: number | undefined, region: string) =>
    all.filter((r) => r.region === region && (step === undefined || r.step === step));
  const value = (rs: readonly GuidanceValue[]): GuidanceValue => ({
    condDelta: meanOf(rs.map((r) => r.condDelta)),
    update: meanOf(rs.map((r) => r.update)),
  });
  return {
    clips: measured.map((c) => c.clip),
    regions,
    rows: steps.flatMap((step) => regions.map((region) => ({ step, region, ...value(at(step, region)) }))),
    mean: Object.fromEntries(regions.map((region) => [region, value(at(undefined, region))])),
  };
}

/**
 * Identity drift of a run measured with `--measure identity`, or undefined when it was not.
 *
 * @example
 * ```ts ignore
 * const d = summarizeIdentity(await readRunMeasures("out.run"));
 * console.log(d?.perClip, d?.slope); // mean bank share per clip, and its trend
 * ```
 */
export function summarizeIdentity(clips: readonly (ClipMeasures | undefined)[]): IdentitySummary | undefined {
  const measured = clips.map((c) => c?.identity ?? []);
  if (!measured.some((c) => c.length)) return undefined;
  const sites = [...new Set(measured.flatMap((c) => c.map((s) => s.layer)))];
  return {
    // A run measures every clip alike (a resume that would not is refused): no clip is without its shares.
    ...identityDrift(measured),
    sites,
    perSite: Object.fromEntries(
      sites.map((
        site,
      ) => [site, measured.map((c) => meanOf(c.filter((s) => s.layer === site).map((s) => s.mean))!)]),
    ),
  };
}

/** "clips 0-4" or "clips 2, 5". */
function clipList(clips: readonly number[]): string {
  const run = clips.every((c, i) => c === clips[0] + i);
  return clips.length === 1
    ? `clip ${clips[0]}`
    : run
    ? `clips ${clips[0]}-${clips[clips.length - 1]}`
    : `clips ${clips.join(", ")}`;
}

/**
 * The guidance-by-region figure: per-step curves (mean over the clips) of the regions with a mask; undefined
 * when every mask is empty.
 */
export async function guidanceFigure(g: GuidanceSummary): Promise<VizFigure | undefined> {
  const rows = g.rows.filter((r): r is typeof r & { condDelta: number; update: number } =>
    r.condDelta !== null && r.update !== null
  );
  if (!rows.length) return undefined;
  return await drawFigure({
    ...describeGuidanceRegions(rows),
    subtitle: `mean over ${clipList(g.clips)} of each mask's mean over the frames`,
  });
}

/** The identity-drift figure: the mean bank share per clip (the sites are listed in the report's table). */
export async function identityFigure(d: IdentitySummary): Promise<VizFigure> {
  const spec = describeIdentityDrift(d);
  const n = d.sites.length;
  return await drawFigure({
    ...spec,
    subtitle: `${spec.subtitle}; mean over steps and ${n} site${n > 1 ? "s" : ""}`,
  });
}
