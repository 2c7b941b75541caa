//===- GgufSource.h - Binding params from a GGUF file -----------*- C++ -*-===//
//
// Params bound from a model's GGUF file (moe-run --weights): each param takes
// the tensor named by its `gguf = "name"` attribute (what moe-import writes),
// else the tensor named like the param itself. The file tensor's element type
// and dims (row-major, TensorInfo::dims()) must equal the param's whole type
// and shape exactly; a mismatch names both:
//
//   model.gguf: tensor 'blk.0.ffn_up_exps.weight' is q8_0 [8, 64, 64],
//   param %up_exps needs f32 [8, 64, 64]
//
// This layer maps ggml's type ids to moe::ElemType (io/ knows nothing of
// moe's types). ggml types moe does not use as stored are refused, with the
// reader's "unsupported tensor type" error, when a param asks for them.
//
// The JIT reads every element type in its stored layout, so for it the
// mapped data is used in place (ggufInPlaceSource, Binder::storedArgsForRank):
// a param a rank sees whole is a pointer into the mapping, never copied; a
// tensor-parallel shard is cut from the mapping (only the rank's rows are
// copied); a derived param (merged gate_up) is computed once at bind time.
// The reference interpreter owns its tensors, so for it the data is copied
// out of the mapping (ggufSource): block-quantised tensors byte for byte into
// Tensor::raw, f16/bf16 converted exactly to the f32 storage Tensor keeps for
// them, f32 copied.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "io/Gguf.h"
#include "runtime/Binder.h"

#include <memory>
#include <optional>
#include <string>

namespace moe {

/// The moe element type of a ggml type: f32, f16, bf16, q8_0, q4_0, mxfp4;
/// nullopt for every other ggml type.
std::optional<ElemType> elemTypeFromGgml(gguf::GgmlType t);
/// The ggml type storing `t` (nullopt for i32, which moe never binds from a
/// file).
std::optional<gguf::GgmlType> ggmlTypeFromElem(ElemType t);

/// The GGUF tensor a param binds to: its `gguf` attribute, else its name.
/// An error if the attribute is present but not a string.
llvm::Expected<std::string> ggufTensorName(const Value &param);

/// The mapped bytes of `param`'s tensor in `file`, after checking the
/// tensor exists, its type is one moe uses, and that type and dims equal
/// `elem` and `shape` (the param's whole type).
llvm::Expected<llvm::ArrayRef<uint8_t>> ggufParamData(const gguf::GgufFile &file,
                                                      const Value &param, ElemType elem,
                                                      llvm::ArrayRef<int64_t> shape);

/// The whole value of `param` (type `elem`, shape `shape`) from `file`:
/// ggufParamData, then copies/converts the data (see above).
llvm::Expected<Tensor> loadGgufParam(const gguf::GgufFile &file, const Value &param,
                                     ElemType elem, llvm::ArrayRef<int64_t> shape);

/// An ArgSource binding every param from `file` (loadGgufParam) and every
/// other argument (inputs) from `inputs`.
ArgSource ggufSource(std::shared_ptr<const gguf::GgufFile> file, ArgSource inputs);

/// Every param of `file` in place (ggufParamData); inputs are not held.
InPlaceSource ggufInPlaceSource(std::shared_ptr<const gguf::GgufFile> file);

} // namespace moe
