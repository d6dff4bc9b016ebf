/**
 * hallo-lab: Hallo (audio-driven portrait animation) stage by stage on onnxruntime-node.
 *
 * Three layers, each usable alone:
 * - graphs: checkpoint readers (zero-copy, no pickle execution), the ONNX graph builder and one builder per network;
 * - stages: image and audio preparation, the networks as stage functions, the DDIM sampler as a step iterator,
 *   the clip loop and the mp4;
 * - views: visualisers and reports (see src/viz and src/report).
 *
 * @module
 */

// Tensors exchanged by the stages.
export { f32, type F32Tensor, numel, type Tensor, type TensorData, type TensorDType } from "./src/tensor.ts";

// Checkpoints: safetensors and torch.save zips, read without copying and without running any pickle code.
export { openCheckpoint, parseCheckpoint } from "./src/weights/checkpoint.ts";
export type { Checkpoint, CheckpointFormat } from "./src/weights/checkpoint_types.ts";
export { CheckpointError } from "./src/weights/errors.ts";
export { type KeyMapping, WeightStore } from "./src/weights/store.ts";
export { bytesToF32, loadTensorF32, readTensorBytes, readTensorF32 } from "./src/weights/convert.ts";
export { type ByteSource, FileSource, MemorySource } from "./src/weights/source.ts";
export type { StorageDType, TensorRef } from "./src/onnx/tensor_ref.ts";
export {
  encodeSafetensors,
  safetensorsHeader,
  SafetensorsWriteError,
  type TensorToWrite,
  writeSafetensors,
} from "./src/weights/safetensors_write.ts";

// The pretrained_models folder: manifest, download, checks, tiny random sets, fp16 caches.
export {
  MANIFEST,
  ManifestError,
  parseManifest,
  parseStages,
  selectFiles,
  stageFiles,
  STAGES,
  type WeightsFile,
  type WeightsFormat,
  type WeightsManifest,
  type WeightsStage,
} from "./src/weights/manifest.ts";
export {
  downloadCommand,
  MissingNetCheckpointError,
  MissingWeightsError,
  NET_CHECKPOINTS,
  requireWeights,
  resolveNetCheckpoint,
  resolveWeightsDir,
  WEIGHTS_ENV,
} from "./src/weights/locate.ts";
export {
  checkFile,
  checkWeights,
  enabledStages,
  type FileCheck,
  missingFor,
  verifyFormat,
  WeightsFormatError,
} from "./src/weights/verify.ts";
export {
  DEFAULT_ENDPOINT,
  type DownloadEvent,
  type DownloadOptions,
  type DownloadReport,
  downloadWeights,
  hubEndpoint,
  WeightsDownloadError,
} from "./src/weights/download.ts";
export { ensureTinyWeights, type TinyWeights } from "./src/tiny/random.ts";
export { readTinyConfigs, TINY_CONFIGS, TINY_NOTICE, TinyWeightsError } from "./src/tiny/configs.ts";
export { LayoutRecorder } from "./src/tiny/layout.ts";
export { Fp16CacheError, fp16Weights, weightsForDtype } from "./src/weights/fp16_cache.ts";
export { findCompiledCaches, removeCaches } from "./src/weights/clean_caches.ts";

// The ONNX graph builder and its layer vocabulary.
export {
  type Binding,
  Graph,
  GraphBuildError,
  type GraphDType,
  type Value,
  type WeightSource,
} from "./src/onnx/graph.ts";
export * as layers from "./src/onnx/layers.ts";
export type { AttentionForm, AttentionProbe, Ctx } from "./src/onnx/layers.ts";
export { DataType, encodeModel } from "./src/onnx/proto.ts";

// Runtime: sessions, devices, dtypes, the compile cache.
export { Session, type SessionOptions } from "./src/runtime/session.ts";
export { type Device, DeviceError, DEVICES, parseDevice } from "./src/runtime/device.ts";
export { DTypeError, parseDType } from "./src/runtime/dtype.ts";
export { BUILDER_VERSION, compile, type Compiled, type CompileKey } from "./src/runtime/cache.ts";

// Networks as graphs, one builder per network.
export { buildVaeDecoder, buildVaeEncoder, parseVaeConfig, type VaeConfig } from "./src/models/vae.ts";
export { buildImageProj, IMAGE_PROJ_CONFIG, type ImageProjConfig } from "./src/models/image_proj.ts";
export { AUDIO_PROJ_CONFIG, type AudioProjConfig, buildAudioProj } from "./src/models/audio_proj.ts";
export { buildFaceLocator, FACE_LOCATOR_CONFIG, type FaceLocatorConfig } from "./src/models/face_locator.ts";
export {
  buildWav2Vec2,
  parseWav2Vec2Config,
  WAV2VEC2_IO,
  type Wav2Vec2Config,
  Wav2Vec2ConfigError,
} from "./src/models/wav2vec2.ts";
export {
  buildReferenceUNet,
  referenceBankOutputs,
  type ReferenceUNetShape,
} from "./src/models/reference_unet.ts";
export {
  buildDenoisingUNet,
  denoisingBankInputs,
  type DenoisingUNetShape,
} from "./src/models/denoising_unet.ts";
export { type BankSlot, bankSlots } from "./src/models/bank.ts";
export {
  HALLO_UNET_KWARGS,
  type HalloUNetKwargs,
  parseUNetConfig,
  type UNetConfig,
} from "./src/models/unet_config.ts";
export { SD15_UNET_CONFIG, SD_VAE_CONFIG, WAV2VEC2_BASE_CONFIG } from "./src/models/full_configs.ts";

// Stage functions over the networks.
export {
  decodeLatents,
  encodeImages,
  loadVae,
  VAE_SCALING_FACTOR,
  vaeDecode,
  vaeEncode,
  type VaeModel,
} from "./src/stages/networks/vae.ts";
export {
  type AudioProjModel,
  type ImageProjModel,
  loadAudioProj,
  loadImageProj,
  projectAudio,
  projectFaceEmbedding,
} from "./src/stages/networks/projections.ts";
export { type FaceLocatorModel, loadFaceLocator, locateFace } from "./src/stages/networks/face_locator.ts";
export {
  loadWav2Vec,
  runWav2Vec,
  wav2vecFeatures,
  type Wav2VecModel,
} from "./src/stages/networks/wav2vec.ts";
export {
  type Bank,
  type BankEntry,
  type DenoisingUNet,
  loadDenoisingUNet,
  loadReferenceUNet,
  type NoiseInputs,
  predictNoise,
  type Probes,
  type ReferenceResult,
  type ReferenceUNet,
  runReferenceUNet,
} from "./src/stages/networks/unets.ts";
export { NetworkStageError } from "./src/stages/networks/load.ts";

// Reference image: loading, masks exactly as upstream, MediaPipe landmarks, insightface.
export {
  DEFAULT_FACE_EXPAND_RATIO,
  type PreparedImage,
  prepareImage,
  type PrepareImageOptions,
} from "./src/stages/image/prepare.ts";
export { type LoadedImage, loadImage, type LoadImageOptions } from "./src/stages/image/load.ts";
export { IMG_SIZE, pixelTensor } from "./src/stages/image/pixels.ts";
export { computeMasks, type MaskPyramid, type MaskSet } from "./src/stages/image/masks.ts";
export { expandRegion, LIP_IDS, SILHOUETTE_IDS } from "./src/stages/image/regions.ts";
export {
  createFaceLandmarker,
  type Face,
  type HalloFaceLandmarker,
  largestFace,
  NoFaceError,
} from "./src/stages/image/landmarker.ts";
export { type DetectedFace, detectFaces } from "./src/stages/image/scrfd.ts";
export { embedFace, umeyamaSimilarity } from "./src/stages/image/arcface.ts";
export { type FaceModels, loadFaceModels } from "./src/stages/image/insightface.ts";
export { ImageError } from "./src/stages/image/errors.ts";
export type { U8Image } from "./src/stages/image/types.ts";

// Driving audio: decoding, vocal separation, wav2vec2 input and windows.
export {
  prepareAudio,
  type PrepareAudioOptions,
  type PreparedAudio,
  SEPARATOR_MODEL,
} from "./src/stages/audio/prepare.ts";
export {
  AudioDecodeError,
  decodeAudio,
  decodeAudioChunks,
  type PcmAudio,
} from "./src/stages/audio/decode.ts";
export { encodeWavPcm16, readWav, type WavAudio, WavFormatError } from "./src/stages/audio/wav.ts";
export { audioFrameCount, prepareWav2vecInput, type Wav2vecInput } from "./src/stages/audio/wav2vec_input.ts";
export { clipSlices, gatherWindows, WINDOW_OFFSETS, windowIndexTable } from "./src/stages/audio/windows.ts";
export {
  KIM_VOCAL_2_PARAMS,
  type MdxParams,
  separateVocals,
  SeparationError,
  SilentAudioError,
} from "./src/stages/audio/mdx.ts";
export { loadMdxSeparator } from "./src/stages/audio/separator_onnx.ts";
export { type SeparatedFiles, separateVocalsToFiles } from "./src/stages/audio/separate_file.ts";
export { FfmpegError, ffmpegPath, runFfmpeg } from "./src/util/ffmpeg.ts";

// Sampling: DDIM, guidance, upstream-exact noise, the step iterator.
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
export { ddimSampler, type Denoiser, type Prediction, type SamplerStep } from "./src/sampling/sampler.ts";

// Generation: one clip, the clip loop with run directories, whole runs.
export { type ClipGeometry, type HalloModels, loadHalloModels } from "./src/stages/generate/models.ts";
export { type ClipInputs, type ClipOptions, denoiseClip, runClip } from "./src/stages/generate/pipeline.ts";
export {
  animate,
  type AnimateOptions,
  type AnimateResult,
  RunDirError,
  runFrames,
} from "./src/stages/generate/animate.ts";
export {
  DEFAULT_SETTINGS,
  loadModelsFor,
  type PreparedInputs,
  prepareInputs,
  type RenderSettings,
  renderVideo,
} from "./src/stages/generate/run.ts";
export {
  type MotionRegion,
  runSweep,
  type SweepAxes,
  sweepLabel,
  type SweepOptions,
  type SweepRun,
  sweepSettings,
  type SweepSummary,
} from "./src/stages/generate/sweep.ts";
export { BankCache } from "./src/stages/generate/bank_cache.ts";
export { type CapturedClip, captureFirstClip } from "./src/stages/generate/capture.ts";
export { videoFrame, videoToFrames } from "./src/stages/video/frames.ts";
export { writeGridVideo } from "./src/stages/video/grid.ts";
export { maskWeights, MotionEnergyMeter, type RegionEnergy } from "./src/stages/video/motion_energy.ts";
export { type MediaInfo, probeMedia, writeMp4 } from "./src/stages/video/mp4.ts";

// Views: figures of every intermediate (Plotly JSON, PNG, Jupyter bundles) and HTML reports.
export {
  type DisplayBundle,
  displayBundle,
  type PlotlyFigure,
  VizError,
  type VizFigure,
} from "./src/viz/figure.ts";
export { portraitFigure } from "./src/viz/portrait.ts";
export { audioFigure } from "./src/viz/audio.ts";
export { bankFigure } from "./src/viz/bank.ts";
export { attentionFigure, attentionProbes } from "./src/viz/attention.ts";
export { type DecodeFn, stepsFigure } from "./src/viz/steps.ts";
export { gridFigure, readRunFrames, runFrame } from "./src/viz/grid.ts";
export { ReportError, writeRunReport } from "./src/report/report.ts";
export { type MotionEnergy, motionEnergy } from "./src/report/measures.ts";

// Parity against upstream reference vectors.
export { type Row as ParityRow, runParity } from "./src/parity/runner.ts";
export { CASES as PARITY_CASES } from "./src/parity/registry.ts";
export type { ParityCase } from "./src/parity/types.ts";
