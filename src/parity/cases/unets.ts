/**
 * Parity cases of the two UNets: `reference_unet_write_{cfg,nocfg}` (bank entries in pairing order and the
 * last up-block features) and `denoising_unet_read_{cfg,nocfg}` (noise prediction and its CFG combination).
 */
import { join } from "node:path";
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
import type { CaseInput, CaseResult, ParityCase } from "../types.ts";

function sources(input: CaseInput): UNetSources {
  const kwargs = input.index.common?.configs?.unet_additional_kwargs as HalloUNetKwargs | undefined;
  return { weightsDir: join(input.dir, "tiny_models"), kwargs };
}

function tensor(input: CaseInput, name: string): F32Tensor {
  const t = input.tensors.get(name);
  if (!t) throw new Error(`reference tensor '${name}' is missing`);
  return t;
}

const bankName = (prefix: string, i: number) => `${prefix}.${String(i).padStart(2, "0")}`;

function referenceCase(name: string): ParityCase {
  return {
    name,
    tolerance: 1e-4,
    async run(input: CaseInput): Promise<CaseResult> {
      const sample = tensor(input, "sample");
      const ctx = tensor(input, "encoder_hidden_states");
      const model = await loadReferenceUNet(sources(input), {
        batch: sample.shape[0],
        contextBatch: ctx.shape[0],
        contextTokens: ctx.shape[1],
        height: sample.shape[2],
        width: sample.shape[3],
      }, { ...input.network });
      const t0 = performance.now();
      const res = await runReferenceUNet(model, sample, ctx, tensor(input, "timestep").data[0]);
      const run_s = (performance.now() - t0) / 1000;
      await model.session.release();
      const outputs: Record<string, F32Tensor> = { out_sample: res.outSample };
      res.bank.forEach((e, i) => outputs[bankName("bank", i)] = e.data);
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
      const src = sources(input);
      const model = await loadDenoisingUNet(src, {
        batch: sample.shape[0],
        frames: sample.shape[2],
        height: sample.shape[3],
        width: sample.shape[4],
        contextTokens: ctx.shape[1],
        audioTokens: audio.shape[2],
        motionFrames: Number(input.index.common?.configs?.n_motion_frames ?? 2),
      }, { ...input.network });
      const levels = model.config.block_out_channels.length;
      const pyramid = (kind: string) =>
        Array.from({ length: levels }, (_, l) => tensor(input, `${kind}_mask.${l}`));
      const bank: Bank = (input.meta.pairing as { i: number; reader: string }[]).map((p) => ({
        path: p.reader,
        data: tensor(input, bankName("bank_read", p.i)),
      }));
      const ms = tensor(input, "motion_scale").data;
      const t0 = performance.now();
      const { noisePred } = await predictNoise(model, {
        sample,
        timestep: tensor(input, "timestep").data[0],
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
      if (sample.shape[0] === 2) {
        const half = noisePred.data.length / 2;
        const guided = cfgCombine(noisePred.data.subarray(0, half), noisePred.data.subarray(half), 3.5);
        outputs.noise_pred_guided = f32([1, ...noisePred.shape.slice(1)], guided);
      }
      return { outputs, build_s: model.timings.build_s, session_s: model.timings.session_s, run_s };
    },
  };
}

export const referenceUNetWriteCfg = referenceCase("reference_unet_write_cfg");
export const referenceUNetWriteNocfg = referenceCase("reference_unet_write_nocfg");
export const denoisingUNetReadCfg = denoisingCase("denoising_unet_read_cfg");
export const denoisingUNetReadNocfg = denoisingCase("denoising_unet_read_nocfg");
