/**
 * The certificate a BFT block carries instead of a proposer signature (see
 * `certification.ts` for what it proves and how it is checked).
 */
import { Either, ParseResult, Schema } from "effect"
import { Hash32 } from "./hash.js"
import { bytesToHex, hexToBytes } from "./hex.js"

/** Bytes as 0x-hex on the wire and in events. */
export const BytesHex = Schema.transformOrFail(Schema.String, Schema.Uint8ArrayFromSelf, {
  strict: true,
  decode: (s, _, ast) =>
    Either.match(hexToBytes(s), {
      onLeft: (e) => ParseResult.fail(new ParseResult.Type(ast, s, e.detail)),
      onRight: (b) => ParseResult.succeed(b)
    }),
  encode: (b) => ParseResult.succeed(bytesToHex(b))
})

const Count = Schema.Int.pipe(Schema.nonNegative())

export class CertificateQc extends Schema.Class<CertificateQc>("CertificateQc")({
  view: Count,
  signers: BytesHex,
  signature: BytesHex
}) {}

/** The committed consensus block's fields (all its hash covers) and the QC that certifies it. */
export class BftCertificate extends Schema.Class<BftCertificate>("BftCertificate")({
  /** The consensus block's hash (recomputed and checked by the ledger). */
  blockHash: Hash32,
  epoch: Count,
  view: Count,
  height: Count,
  parentHash: Hash32,
  justifyView: Count,
  justifyHash: Hash32,
  /** The leader's seat in the committee. */
  proposer: Count,
  payload: Schema.Array(Schema.String),
  qc: CertificateQc
}) {}
