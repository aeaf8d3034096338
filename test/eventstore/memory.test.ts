import { Effect } from "effect"
import { MemoryEventStore } from "../../infra/eventstore/MemoryEventStore.js"
import { eventStoreConformance } from "./conformance.js"

eventStoreConformance("memory", () =>
  Effect.sync(() => {
    const storage = MemoryEventStore.makeStorage()
    return { open: MemoryEventStore.makeWith(storage), rawRows: Effect.sync(() => MemoryEventStore.rawRows(storage)) }
  })
)
