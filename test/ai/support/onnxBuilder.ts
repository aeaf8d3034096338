/** The ONNX model builder the tests use: it lives in domain/ (the gateways' benchmark model is built with it). */
export * from "../../../domain/ai/onnx/builder.js"
