/**
 * Parity cases of the two UNets: `reference_unet_write_{cfg,nocfg}` (bank entries in pairing order and the
 * last up-block features) and `denoising_unet_read_{cfg,nocfg}` (noise prediction and its CFG combination).
 * Every setting comes from the case: sizes, frames and batch from the tensors' shapes, the timestep and the
 * motion scale from their input tensors (checked against the sidecar's numbers), the motion-frame count from
 * the bank's batch, the bank's writer/reader blocks from `pairing`, the guidance scale from the sidecar.
 */
import { join } from "node:path";
import { denoisingBankInputs } from "../../models/denoising_unet.ts";
import type { HalloUNetKwargs } from "../../models/unet_config.ts";
import { cfgCombine } from "../../sampling/cfg.ts";
import {
  type Bank,
  loadDenoisingUNet,
  loadReferenceUNet,
  predictNoise,
  runReferenceUNet,
  type UNetSources,
} from "../../stages/networks/unets.ts";
import { f32, type F32Tensor } from "../../tensor.ts";
import { agrees, guidanceScale, indexConfig, pairing, type PairingEntry, settingError } from "../settings.ts";
import type { CaseInput, CaseResult, ParityCase } from "../types.ts";
import { referenceTensor as tensor } from "./vae.ts";

function sources(input: CaseInput): UNetSources {
  return {
    weightsDir: join(input.dir, "tiny_models"),
    kwargs: indexConfig<HalloUNetKwargs>(input, "unet_additional_kwargs"),
  };
}

/** Bank entry `i` of a flattened list (`bank.00`, as the public set pads it, or `bank.0`). */
function bankTensor(input: CaseInput, prefix: string, i: number): F32Tensor {
  const padded = `${prefix}.${String(i).padStart(2, "0")}`;
  return input.tensors.get(padded) ?? input.tensors.get(`${prefix}.${i}`) ?? tensor(input, padded);
}

/** This port pairs writer and reader blocks by module path; a pairing that does not is a clear error. */
function samePathPairs(input: CaseInput, pairs: readonly PairingEntry[]): void {
  for (const p of pairs) {
    if (p.writer !== p.reader) {
      settingError(
        input,
        `pairing ${p.i}: ${p.writer} is read by ${p.reader}; this port pairs same-path blocks`,
      );
    }
  }
}

/** The scalar of a 0-d/1-element input tensor, checked against the sidecar's `key` when it has one. */
function scalar(input: CaseInput, name: string, key: string): number {
  const t = tensor(input, name);
  if (t.data.length !== 1) settingError(input, `tensor '${name}' must hold one value, has ${t.data.length}`);
  agrees(input, key, t.data[0], `tensor '${name}'`);
  return t.data[0];
}

function referenceCase(name: string): ParityCase {
  return {
    name,
    tolerance: 1e-4,
    async run(input: CaseInput): Promise<CaseResult> {
      const sample = tensor(input, "sample");
      const ctx = tensor(input, "encoder_hidden_states");
      const pairs = pairing(input);
      samePathPairs(input, pairs);
      const timestep = scalar(input, "timestep", "timestep");
      const model = await loadReferenceUNet(sources(input), {
        batch: sample.shape[0],
        contextBatch: ctx.shape[0],
        contextTokens: ctx.shape[1],
        height: sample.shape[2],
        width: sample.shape[3],
      }, { ...input.network });
      const t0 = performance.now();
      const res = await runReferenceUNet(model, sample, ctx, timestep);
      const run_s = (performance.now() - t0) / 1000;
      await model.session.release();
      if (res.bank.length !== pairs.length) {
        settingError(
          input,
          `pairing lists ${pairs.length} bank entries, the reference UNet writes ${res.bank.length}`,
        );
      }
      const outputs: Record<string, F32Tensor> = { out_sample: res.outSample };
      // Each written entry goes to the name the case gives its writer block.
      const bankKeys = [...input.tensors.keys()].filter((k) => /^bank\.\d+$/.test(k));
      for (const p of pairs) {
        const e = res.bank.find((b) => b.path === p.writer);
        if (!e) settingError(input, `pairing ${p.i}: the reference UNet has no bank writer ${p.writer}`);
        const padded = `bank.${String(p.i).padStart(2, "0")}`;
        outputs[bankKeys.includes(`bank.${p.i}`) ? `bank.${p.i}` : padded] = e.data;
      }
      return { outputs, build_s: model.timings.build_s, session_s: model.timings.session_s, run_s };
    },
  };
}

function denoisingCase(name: string): ParityCase {
  return {
    name,
    tolerance: 1e-4,
    async run(input: CaseInput): Promise<CaseResult> {
      const sample = tensor(input, "sample");
      const ctx = tensor(input, "encoder_hidden_states");
      const audio = tensor(input, "audio_embedding");
      const [batch, , frames, height, width] = sample.shape;
      agrees(input, "video_length", frames, "the frames of tensor 'sample'");
      if (typeof input.meta.cfg === "boolean" && input.meta.cfg !== (batch === 2)) {
        settingError(input, `'cfg' is ${input.meta.cfg} but tensor 'sample' has batch ${batch}`);
      }
      // The guided prediction is compared only when the case has one; then its scale must be recorded.
      const guided = input.tensors.has("noise_pred_guided");
      if (guided && batch !== 2) {
        settingError(input, `noise_pred_guided needs a CFG batch of 2, 'sample' has ${batch}`);
      }
      const scale = guided ? guidanceScale(input) : undefined;
      const pairs = pairing(input);
      samePathPairs(input, pairs);
      // The bank holds the reference and motion frames of every batch item: batch * (1 + n_motion_frames).
      const bankBatch = bankTensor(input, "bank_read", pairs[0].i).shape[0];
      const motionFrames = bankBatch / batch - 1;
      if (!Number.isInteger(motionFrames) || motionFrames < 0) {
        settingError(input, `bank batch ${bankBatch} is not a multiple of the sample batch ${batch}`);
      }
      const indexMotion = input.index.common?.configs?.n_motion_frames;
      if (indexMotion !== undefined && indexMotion !== motionFrames) {
        settingError(input, `index.json n_motion_frames ${indexMotion}, but the bank holds ${motionFrames}`);
      }
      const ms = tensor(input, "motion_scale").data;
      if (ms.length !== 3) settingError(input, `tensor 'motion_scale' must hold 3 values, has ${ms.length}`);
      agrees(input, "motion_scale", [...ms], "tensor 'motion_scale'");
      const timestep = scalar(input, "timestep", "timestep");
      const model = await loadDenoisingUNet(sources(input), {
        batch,
        frames,
        height,
        width,
        contextTokens: ctx.shape[1],
        audioTokens: audio.shape[2],
        motionFrames,
      }, { ...input.network });
      const levels = model.config.block_out_channels.length;
      const pyramid = (kind: string) =>
        Array.from({ length: levels }, (_, l) => tensor(input, `${kind}_mask.${l}`));
      // In the order the UNet reads its bank, each block gets the entry the case pairs with it.
      const bank: Bank = denoisingBankInputs(model.config).map((name) => {
        const path = name.slice("bank.".length);
        const p = pairs.find((q) => q.reader === path);
        if (!p) settingError(input, `pairing has no bank entry read by ${path}`);
        return { path, data: bankTensor(input, "bank_read", p.i) };
      });
      const t0 = performance.now();
      const { noisePred } = await predictNoise(model, {
        sample,
        timestep,
        encoderHiddenStates: ctx,
        audioEmbedding: audio,
        maskCondFea: tensor(input, "mask_cond_fea"),
        fullMask: pyramid("full"),
        faceMask: pyramid("face"),
        lipMask: pyramid("lip"),
        motionScale: [ms[0], ms[1], ms[2]],
        bank,
      });
      const run_s = (performance.now() - t0) / 1000;
      await model.session.release();
      const outputs: Record<string, F32Tensor> = { noise_pred: noisePred };
      if (scale !== undefined) {
        const half = noisePred.data.length / 2;
        const g = cfgCombine(noisePred.data.subarray(0, half), noisePred.data.subarray(half), scale);
        outputs.noise_pred_guided = f32([1, ...noisePred.shape.slice(1)], g);
      }
      return { outputs, build_s: model.timings.build_s, session_s: model.timings.session_s, run_s };
    },
  };
}

export const referenceUNetWriteCfg = referenceCase("reference_unet_write_cfg");
export const referenceUNetWriteNocfg = referenceCase("reference_unet_write_nocfg");
export const denoisingUNetReadCfg = denoisingCase("denoising_unet_read_cfg");
export const denoisingUNetReadNocfg = denoisingCase("denoising_unet_read_nocfg");
