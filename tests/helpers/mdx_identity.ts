/** The identity stand-in for Kim_Vocal_2.onnx (src/tiny/mdx_identity.ts), for the separator tests. */
export { writeIdentityMdxModel } from "../../src/tiny/mdx_identity.ts";
