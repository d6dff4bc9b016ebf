/**
 * Upstream's mask pipeline (`get_mask` in hallo/utils/util.py, then `ImageProcessor.preprocess` in
 * hallo/datasets/image_processor.py) from the 478 landmarks to every mask tensor the networks read:
 *
 * - binary face and lip rectangles at the image's resolution (face ratio = face_expand_ratio, lip ratio 2.0);
 * - `blur_mask`: cv2.resize to 64x64 -> cv2.GaussianBlur (51 for the face, 31 for the lips) -> MINMAX normalise;
 * - sep_background = uint8((1 - v/255) * 255) (truncating), sep_face = saturating face_blur - sep_lip;
 * - face_region: the binary face mask, PIL-bilinear resized to 512, /255, as 3 identical channels;
 * - pyramids: sep_background ("full"), sep_face ("face"), sep_lip ("lip") PIL-resized to 64/32/16/8, /255,
 *   flattened to (1, HW).
 */
import { f32, type F32Tensor } from "../../tensor.ts";
import { cvResizeLinear } from "./cv_resize.ts";
import { gaussianBlur8u } from "./cv_gaussian.ts";
import { normalizeMinMax8u } from "./cv_normalize.ts";
import { ImageError } from "./errors.ts";
import { pilResizeBilinear } from "./pil_resize.ts";
import { IMG_SIZE } from "./pixels.ts";
import {
  expandRegion,
  fillRegion,
  landmarkBox,
  type LandmarksPx,
  LIP_EXPAND_RATIO,
  LIP_IDS,
  type Region,
  SILHOUETTE_IDS,
} from "./regions.ts";
import { type U8Image, u8Image } from "./types.ts";

/** Side of the blurred masks (`get_blur_mask` resize_dim). */
export const BLUR_SIZE = 64;
/** Gaussian kernel sizes of upstream's get_mask: face 51 (sigma 8), lips 31 (sigma 5). */
export const FACE_BLUR_KERNEL = 51;
export const LIP_BLUR_KERNEL = 31;

/** A box before and after expand_region. */
export interface MaskBox {
  /** min/max of the selected landmarks, rounded half-to-even. */
  readonly rounded: Region;
  /** expand_region's result: the slice bounds used to fill the mask (may be negative: numpy wraps). */
  readonly expanded: Region;
}

/** The mask pyramid of one region: levels 0..3 = (1,4096), (1,1024), (1,256), (1,64) float32 in [0,1]. */
export type MaskPyramid = readonly [F32Tensor, F32Tensor, F32Tensor, F32Tensor];

/** Everything upstream derives from the landmarks. Names follow upstream's cache files and variables. */
export interface MaskSet {
  readonly faceBox: MaskBox;
  readonly lipBox: MaskBox;
  /** `{name}_face_mask.png`: binary 0/255 at the image's resolution. */
  readonly faceMask: U8Image;
  /** `{name}_lip_mask.png`: binary 0/255 at the image's resolution. */
  readonly lipMask: U8Image;
  /** 64x64 blurred masks, as the PNGs upstream writes. */
  readonly faceMaskBlur: U8Image;
  readonly sepLip: U8Image;
  readonly sepBackground: U8Image;
  readonly sepFace: U8Image;
  /** Face-locator input (3, 512, 512) in [0,1]. */
  readonly faceRegion: F32Tensor;
  /** `full` = sep_background, `face` = sep_face, `lip` = sep_lip. */
  readonly fullMasks: MaskPyramid;
  readonly faceMasks: MaskPyramid;
  readonly lipMasks: MaskPyramid;
}

/** upstream `blur_mask`: cv2.resize to 64x64, GaussianBlur(k, k, sigma 0), normalize MINMAX 0..255. */
export function blurMask(mask: U8Image, kernel: number, size: number = BLUR_SIZE): U8Image {
  return normalizeMinMax8u(gaussianBlur8u(cvResizeLinear(mask, size, size), kernel, kernel, 0));
}

/** upstream `get_background_mask`: uint8((1 - v/255.0) * 255), truncating (254 - v for some v). */
export function backgroundMask(faceBlur: U8Image): U8Image {
  const lut = Uint8Array.from({ length: 256 }, (_, v) => Math.trunc((1.0 - v / 255.0) * 255));
  return u8Image(faceBlur.width, faceBlur.height, 1, faceBlur.data.map((v) => lut[v]));
}

/** upstream `get_sep_face_mask`: cv2.subtract(face_blur, sep_lip), saturating at 0. */
export function sepFaceMask(faceBlur: U8Image, sepLip: U8Image): U8Image {
  const out = new Uint8Array(faceBlur.data.length);
  for (let i = 0; i < out.length; i++) {
    const v = faceBlur.data[i] - sepLip.data[i];
    out[i] = v < 0 ? 0 : v;
  }
  return u8Image(faceBlur.width, faceBlur.height, 1, out);
}

/** The four pyramid levels of a 64x64 mask: PIL-bilinear to size/8, /16, /32, /64, /255, (1, HW). */
export function maskPyramid(mask: U8Image, imgSize: number = IMG_SIZE): MaskPyramid {
  const level = (div: number): F32Tensor => {
    const s = Math.floor(imgSize / div);
    const r = pilResizeBilinear(mask, s, s);
    return f32([1, s * s], Float32Array.from(r.data, (v) => v / 255));
  };
  return [level(8), level(16), level(32), level(64)];
}

/** The face-locator input: binary face mask -> RGB -> PIL bilinear to imgSize -> /255, (3, S, S). */
export function faceRegionTensor(faceMask: U8Image, imgSize: number = IMG_SIZE): F32Tensor {
  const r = pilResizeBilinear(faceMask, imgSize, imgSize);
  const plane = imgSize * imgSize;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) out[i] = r.data[i] / 255;
  out.copyWithin(plane, 0, plane);
  out.copyWithin(2 * plane, 0, plane);
  return f32([3, imgSize, imgSize], out);
}

function box(landmarks: LandmarksPx, ids: readonly number[], w: number, h: number, ratio: number): MaskBox {
  const rounded = landmarkBox(landmarks, ids);
  return { rounded, expanded: expandRegion(rounded, w, h, ratio) };
}

/**
 * All of upstream's masks from landmarks in pixels (`[x*w, y*h]`, 478 points) of a width x height image.
 * `faceExpandRatio` is upstream's face_expand_ratio (default 1.2); `imgSize` the generated image size
 * (upstream: 512) that the face region and the pyramids (imgSize/8 ... imgSize/64) are made for.
 */
export function computeMasks(
  landmarks: LandmarksPx,
  width: number,
  height: number,
  faceExpandRatio = 1.2,
  imgSize: number = IMG_SIZE,
): MaskSet {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new ImageError("", `image size must be positive integers, got ${width}x${height}`);
  }
  if (!Number.isFinite(faceExpandRatio) || faceExpandRatio <= 0) {
    throw new ImageError("", `face_expand_ratio must be a positive number, got ${faceExpandRatio}`);
  }
  const lipBox = box(landmarks, LIP_IDS, width, height, LIP_EXPAND_RATIO);
  const faceBox = box(landmarks, SILHOUETTE_IDS, width, height, faceExpandRatio);
  const lipMask = u8Image(width, height, 1, fillRegion(lipBox.expanded, width, height));
  const faceMask = u8Image(width, height, 1, fillRegion(faceBox.expanded, width, height));
  const faceMaskBlur = blurMask(faceMask, FACE_BLUR_KERNEL);
  const sepLip = blurMask(lipMask, LIP_BLUR_KERNEL);
  const sepBackground = backgroundMask(faceMaskBlur);
  const sepFace = sepFaceMask(faceMaskBlur, sepLip);
  return {
    faceBox,
    lipBox,
    faceMask,
    lipMask,
    faceMaskBlur,
    sepLip,
    sepBackground,
    sepFace,
    faceRegion: faceRegionTensor(faceMask, imgSize),
    fullMasks: maskPyramid(sepBackground, imgSize),
    faceMasks: maskPyramid(sepFace, imgSize),
    lipMasks: maskPyramid(sepLip, imgSize),
  };
}
