/**
 * hallo-lab: Hallo (audio-driven portrait animation) stage by stage on onnxruntime-node, faithful to upstream
 * PyTorch, with every intermediate open to inspection.
 *
 * Start from the front door, {@link Hallo}: it loads the networks once and has a method per stage; every method
 * is a thin call of a stage function exported below, so any stage can also be called alone.
 *
 * @example A video, then the first clip step by step (tiny random weights: runs anywhere in seconds)
 * ```ts
 * import { ensureTinyWeights, Hallo } from "./mod.ts";
 *
 * const { dir } = await ensureTinyWeights();
 * const hallo = await Hallo.load(dir, { size: 64, frames: 4 });
 * try {
 *   await hallo.prepare("fixtures/astronaut.png", "fixtures/speech.wav");
 *   const clip = await hallo.clip(0); // masks per frame, audio tokens, face features, context, ref latents
 *   const bank = await hallo.bank(clip); // the reference UNet once
 *   const steps = hallo.denoise(clip, { bank, steps: 2, seed: 42 });
 *   for await (const s of steps) console.log(s.index, s.timestep, s.next.shape);
 * } finally {
 *   await hallo.release();
 * }
 * ```
 *
 * The layers below it, each usable alone: graphs (checkpoint-free ONNX builders named by upstream module paths),
 * weights/runtime (checkpoint readers, sessions, the sampler), stages (image, audio, networks, generation) and
 * views (figures, reports).
 *
 * @module
 */

// ---------------------------------------------------------------------------------------------------------------
// The front door and its results
// ---------------------------------------------------------------------------------------------------------------
export {
  Hallo,
  type HalloAnimateOptions,
  type HalloAnimateResult,
  type HalloClip,
  type HalloDenoiseOptions,
  type HalloOptions,
} from "./src/stages/generate/hallo.ts";
export {
  type CfgBatch,
  type ClipGeometry,
  clipGeometry,
  type HalloModels,
  loadHalloModels,
  type ModelOptions,
} from "./src/stages/generate/models.ts";
export type { HalloConfigs } from "./src/models/hallo_configs.ts";
export {
  type EventPlace,
  type EventPosition,
  type HalloEvent,
  type OnEvent,
  stepProgress,
} from "./src/sampling/events.ts";
export { GenerationError, InputFileError, SweepAxisError } from "./src/stages/generate/errors.ts";

// ---------------------------------------------------------------------------------------------------------------
// Stages: the reference image and the driving audio
// ---------------------------------------------------------------------------------------------------------------
export {
  DEFAULT_FACE_EXPAND_RATIO,
  type ImageConditioning,
  type PreparedImage,
  prepareImage,
  type PrepareImageOptions,
} from "./src/stages/image/prepare.ts";
export { computeMasks, type MaskPyramid, type MaskSet } from "./src/stages/image/masks.ts";
export { NoFaceError } from "./src/stages/image/landmarker.ts";
export { ImageError } from "./src/stages/image/errors.ts";
export {
  type AudioWindows,
  prepareAudio,
  type PrepareAudioOptions,
  type PreparedAudio,
  SEPARATOR_MODEL,
} from "./src/stages/audio/prepare.ts";
export { AudioDecodeError, decodeAudio, type PcmAudio } from "./src/stages/audio/decode.ts";
export { encodeWavPcm16, readWav, toPcm16, type WavAudio, WavFormatError } from "./src/stages/audio/wav.ts";
export { dbfs, type LoudnessMeasure, type ScaledAudio, scaleToDbfs } from "./src/stages/audio/loudness.ts";
export { clipSlices, gatherWindows, WINDOW_OFFSETS, windowIndexTable } from "./src/stages/audio/windows.ts";
export { SeparationError, SilentAudioError } from "./src/stages/audio/mdx.ts";

// ---------------------------------------------------------------------------------------------------------------
// Stages: the networks as functions over plain tensors
// ---------------------------------------------------------------------------------------------------------------
export {
  decodeLatents,
  encodeImages,
  loadVae,
  VAE_SCALING_FACTOR,
  type VaeModel,
} from "./src/stages/networks/vae.ts";
export {
  type AudioProjModel,
  type ImageProjModel,
  projectAudio,
  projectFaceEmbedding,
} from "./src/stages/networks/projections.ts";
export { type FaceLocatorModel, locateFace } from "./src/stages/networks/face_locator.ts";
export { loadWav2Vec, wav2vecFeatures, type Wav2VecModel } from "./src/stages/networks/wav2vec.ts";
export {
  type Bank,
  type BankEntry,
  type DenoisingUNet,
  type NoiseInputs,
  predictNoise,
  type Probes,
  type ReferenceResult,
  type ReferenceUNet,
  runReferenceUNet,
} from "./src/stages/networks/unets.ts";
export { NetworkStageError } from "./src/stages/networks/load.ts";

// ---------------------------------------------------------------------------------------------------------------
// Stages: one clip, finely (conditioning, bank, noise, the step iterator), and whole videos
// ---------------------------------------------------------------------------------------------------------------
export {
  type ClipConditioning,
  type ClipInputs,
  clipInputs,
  clipMasks,
  conditionClip,
  faceFeatures,
  guidanceContext,
  referenceLatents,
} from "./src/stages/generate/conditioning.ts";
export { initialNoise, latentShape } from "./src/stages/generate/noise.ts";
export {
  type ClipLatents,
  type ClipOptions,
  denoise,
  denoiseClip,
  type DenoiseOptions,
  type ReferenceBank,
  referenceBank,
  runClip,
} from "./src/stages/generate/pipeline.ts";
export { BankCache } from "./src/stages/generate/bank_cache.ts";
export { type CapturedClip, captureFirstClip, type CaptureOptions } from "./src/stages/generate/capture.ts";
export { animate, type AnimateOptions, type AnimateResult } from "./src/stages/generate/animate.ts";
export {
  checkRunPaths,
  type FinishedClip,
  identityDifference,
  makeRunIdentity,
  type OpenRunOptions,
  readRunFrames,
  readRunMeasures,
  readRunRecord,
  RunDir,
  RunDirError,
  RunDirLockedError,
  runFrame,
  type RunGeometry,
  runGeometry,
  type RunIdentity,
  runIdentityOfFiles,
  type RunLayout,
  RunPathError,
  type RunRecord,
} from "./src/stages/generate/run_dir.ts";
export {
  DEFAULT_SETTINGS,
  type PreparedInputs,
  prepareInputs,
  type PrepareOptions,
  renderIdentity,
  type RenderOptions,
  type RenderResult,
  type RenderSettings,
  renderVideo,
} from "./src/stages/generate/run.ts";
export {
  type MotionRegion,
  runSweep,
  type SharedWork,
  type SweepAxes,
  sweepLabel,
  type SweepOptions,
  type SweepRun,
  sweepSettings,
  type SweepSummary,
} from "./src/stages/generate/sweep.ts";
export { videoFrame, videoToFrames } from "./src/stages/video/frames.ts";
export { type MediaInfo, probeMedia, writeMp4 } from "./src/stages/video/mp4.ts";
export { maskWeights, MotionEnergyMeter, type RegionEnergy } from "./src/stages/video/motion_energy.ts";

// ---------------------------------------------------------------------------------------------------------------
// Inspection: activation caches, interventions (patching), attribution measures, variant comparison, replay
// ---------------------------------------------------------------------------------------------------------------
/**
 * Record what the UNet computes (probes asked for at load), change what it sees, and measure the difference.
 *
 * @example The lip branch's audio attention over a clip, and the clip with its audio silenced at step 1
 * ```ts ignore
 * const site = "down_blocks.0.audio_modules.0.transformer_blocks.0.attn2_2";
 * const hallo = await Hallo.load(dir, { size: 64, frames: 4, probes: { attention: { [site]: "heads" } } });
 * await hallo.prepare("fixtures/astronaut.png", "fixtures/speech.wav");
 * const clip = await hallo.clip(0);
 * const cache = new ActivationCache({ sites: { [`${site}.probs`]: { mean: ["heads", "steps"], headAxis: 1 } }, maxBytes: 1e8 });
 * for await (const s of hallo.denoise(clip, { steps: 2, cache })) void s; // every step recorded
 * const a = audioAttribution([{ probs: cache.get(`${site}.probs`), mask: clip.masks.lip[0] }], { frames: 4, height: 8, width: 8 });
 * const d = await hallo.compare(clip, { steps: 2 }, { steps: 2, interventions: [{ kind: "audio-silence", steps: [1] }] });
 * console.log(a.total, d.regions.lip);
 * ```
 */
export {
  ActivationCache,
  type ActivationCacheOptions,
  type ActivationRecord,
} from "./src/stages/inspect/cache.ts";
export type { SiteReduction } from "./src/stages/inspect/reduce.ts";
export { InspectError } from "./src/stages/inspect/errors.ts";
export { clipActivationCache, type ClipCacheOptions } from "./src/stages/generate/clip_cache.ts";
export {
  applyIntervention,
  applyInterventions,
  type Intervention,
  INTERVENTION_KINDS,
  type InterventionSources,
  type PlannedIntervention,
  sourceNeeded,
} from "./src/stages/inspect/interventions.ts";
export { parseIntervention, parseInterventions } from "./src/stages/inspect/interventions_json.ts";
export { checkAttentionMass, meanHeads } from "./src/stages/inspect/attention_mass.ts";
export {
  AUDIO_BRANCHES,
  type AudioAttribution,
  audioAttribution,
  type AudioBranch,
  audioBranchSite,
  type AudioLayerProbe,
} from "./src/stages/inspect/audio_attribution.ts";
export {
  type BankShare,
  bankShare,
  bankShareSeries,
  type IdentityDrift,
  identityDrift,
} from "./src/stages/inspect/identity.ts";
export {
  frameDifference,
  type MotionAttention,
  motionAttention,
  type Seam,
  seamAttention,
  seamMeasure,
} from "./src/stages/inspect/temporal.ts";
export {
  guidanceByRegion,
  type GuidanceRegionRow,
  type GuidanceStep,
} from "./src/stages/inspect/guidance_regions.ts";
export {
  type ClipRunner,
  mouthChange,
  type Occlusion,
  occlusionAttribution,
  shiftWindows,
  silenceWindow,
} from "./src/stages/inspect/occlusion.ts";
export { regionMeanAbsDiff } from "./src/stages/inspect/region_mean.ts";
export { type ClipComparison, type ClipVariant, compareVariants } from "./src/stages/generate/compare.ts";
export {
  REPLAY_RELATIVE_TOLERANCE,
  replayInterventions,
  type ReplayOptions,
  type ReplayResult,
  replayStep,
  replayTolerance,
} from "./src/stages/generate/replay.ts";
export { readRunStep } from "./src/stages/generate/run_dir.ts";
export {
  type BankShareMeasure,
  type ClipMeasures,
  type GuidanceMeasure,
  IDENTITY_SITES,
  identityProbes,
  type MeasureOptions,
} from "./src/stages/generate/clip_measures.ts";
export type { RecordedStep, RecordedSteps } from "./src/stages/generate/run_steps.ts";

// ---------------------------------------------------------------------------------------------------------------
// Sampling: DDIM, guidance, upstream-exact noise, the step iterator
// ---------------------------------------------------------------------------------------------------------------
export {
  type DdimConfig,
  ddimConfig,
  type DdimSchedule,
  ddimStep,
  ddimTimesteps,
  HALLO_SCHEDULER_KWARGS,
  makeDdimSchedule,
} from "./src/sampling/ddim.ts";
export { cfgCombine, cfgSplit } from "./src/sampling/cfg.ts";
export { manualSeed, type RandnResult, TorchCpuGenerator } from "./src/sampling/noise.ts";
export {
  ddimSampler,
  type Denoiser,
  type Prediction,
  type SamplerOptions,
  type SamplerStep,
} from "./src/sampling/sampler.ts";

// ---------------------------------------------------------------------------------------------------------------
// Tensors
// ---------------------------------------------------------------------------------------------------------------
export { f32, type F32Tensor, numel, type Tensor, type TensorData, type TensorDType } from "./src/tensor.ts";

// ---------------------------------------------------------------------------------------------------------------
// Weights: the pretrained_models folder, checkpoints, tiny random sets
// ---------------------------------------------------------------------------------------------------------------
export {
  MissingNetCheckpointError,
  MissingWeightsError,
  resolveWeightsDir,
  WEIGHTS_ENV,
} from "./src/weights/locate.ts";
export { checkWeights, type FileCheck, missingFor } from "./src/weights/verify.ts";
export {
  type DownloadEvent,
  type DownloadOptions,
  type DownloadReport,
  downloadWeights,
} from "./src/weights/download.ts";
export type { WeightsStage } from "./src/weights/manifest.ts";
export { openCheckpoint } from "./src/weights/checkpoint.ts";
export type { Checkpoint, CheckpointFormat } from "./src/weights/checkpoint_types.ts";
export { CheckpointError } from "./src/weights/errors.ts";
export type { StorageDType, TensorRef } from "./src/onnx/tensor_ref.ts";
export { ensureTinyWeights, type TinyWeights } from "./src/tiny/random.ts";
export { readTinyConfigs, TINY_NOTICE, TinyWeightsError } from "./src/tiny/configs.ts";

// ---------------------------------------------------------------------------------------------------------------
// Runtime: devices and precision (what the `device` and `dtype` options take)
// ---------------------------------------------------------------------------------------------------------------
export { type Device, DeviceError } from "./src/runtime/device.ts";
export { DTypeError } from "./src/runtime/dtype.ts";

// ---------------------------------------------------------------------------------------------------------------
// Graphs: the ONNX builder, its layer vocabulary and one builder per network
// ---------------------------------------------------------------------------------------------------------------
export { Graph, GraphBuildError, type WeightSource } from "./src/onnx/graph.ts";
export * as layers from "./src/onnx/layers.ts";
export { buildVaeDecoder, buildVaeEncoder, type VaeConfig } from "./src/models/vae.ts";
export { buildImageProj, type ImageProjConfig } from "./src/models/image_proj.ts";
export { type AudioProjConfig, buildAudioProj } from "./src/models/audio_proj.ts";
export { buildFaceLocator, type FaceLocatorConfig } from "./src/models/face_locator.ts";
export { buildWav2Vec2, type Wav2Vec2Config } from "./src/models/wav2vec2.ts";
export { buildReferenceUNet, type ReferenceUNetShape } from "./src/models/reference_unet.ts";
export { buildDenoisingUNet, type DenoisingUNetShape } from "./src/models/denoising_unet.ts";
export { type HalloUNetKwargs, parseUNetConfig, type UNetConfig } from "./src/models/unet_config.ts";

// ---------------------------------------------------------------------------------------------------------------
// Views: figures of every intermediate (Plotly JSON, PNG, Jupyter bundles), notebooks, HTML reports
// ---------------------------------------------------------------------------------------------------------------
export {
  type DisplayBundle,
  displayBundle,
  type PlotlyFigure,
  VizError,
  type VizFigure,
} from "./src/viz/figure.ts";
export { portraitFigure } from "./src/viz/portrait.ts";
export { audioFigure } from "./src/viz/audio.ts";
export { bankFigure, shortPath } from "./src/viz/bank.ts";
export { attentionFigure, attentionProbes } from "./src/viz/attention.ts";
export { type DecodeFn, latentFrame, stepsFigure } from "./src/viz/steps.ts";
export { gridFigure } from "./src/viz/grid.ts";
export { drawFigure } from "./src/viz/draw.ts";
export type { FigureSpec } from "./src/viz/panels.ts";
export { BLUE_RED, type Colormap, VIRIDIS } from "./src/viz/colormap.ts";
export {
  type BankReadsRow,
  describeAudioAttribution,
  describeBankReads,
  describeGuidanceRegions,
  describeIdentityDrift,
  describeMotionAttention,
  describeOcclusion,
  describeSeams,
  type IdentityDriftOptions,
  type InspectFigureOptions,
  type SeamProfile,
} from "./src/viz/inspect_figures.ts";
export { chwToRgb, type RgbImage } from "./src/viz/raster.ts";
export { ReportError, type RunReport, type RunReportOptions, writeRunReport } from "./src/report/report.ts";
export { writeSweepReport } from "./src/report/sweep.ts";
export {
  display,
  fixture,
  fmt,
  note,
  notebookOut,
  type NotebookWeights,
  notebookWeights,
  show,
  table,
} from "./src/report/notebook.ts";
export { type MotionEnergy, motionEnergy } from "./src/report/measures.ts";
export {
  type GuidanceSummary,
  type IdentitySummary,
  summarizeGuidance,
  summarizeIdentity,
} from "./src/report/run_measures.ts";

// ---------------------------------------------------------------------------------------------------------------
// Parity against upstream reference vectors
// ---------------------------------------------------------------------------------------------------------------
export { type ParityRow, runParity } from "./src/parity/runner.ts";
export { PARITY_CASES } from "./src/parity/registry.ts";
export type { ParityCase } from "./src/parity/types.ts";
