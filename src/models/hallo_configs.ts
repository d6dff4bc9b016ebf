/** The network sizes upstream hard-codes in inference.py, as one object a loader can be given (tiny models). */
import type { AudioProjConfig } from "./audio_proj.ts";
import type { FaceLocatorConfig } from "./face_locator.ts";
import type { ImageProjConfig } from "./image_proj.ts";
import type { HalloUNetKwargs } from "./unet_config.ts";

/** Overrides of the sizes upstream hard-codes (tiny test models). */
export interface HalloConfigs {
  imageProj?: ImageProjConfig;
  audioProj?: AudioProjConfig;
  faceLocator?: FaceLocatorConfig;
  unetKwargs?: HalloUNetKwargs;
  nMotionFrames?: number;
}
