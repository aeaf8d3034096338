// The entry of an InferenceEngine thread (see InferenceThread.ts). Plain
// JavaScript, so node starts it as is; it registers tsx in this thread and
// loads the TypeScript thread program. Worker threads do not inherit the
// parent's loader hooks (bin/topai.js registers tsx in the main thread only,
// and vitest transforms in its own way), so the thread registers its own.
import { register } from "tsx/esm/api"

register()
await import("./inferenceThreadWorker.ts")
