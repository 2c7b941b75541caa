//===- Random.h - Deterministic random tensors ------------------*- C++ -*-===//
//
// Random inputs and params as a pure function of (seed, argument name,
// element type, concrete shape), so two pipelines over the same file -- the
// module before and after a pass, the interpreter and the JIT, one rank and
// N ranks -- see the same data. The stream is splitmix64 seeded with a hash
// of all four; it does not depend on the argument's position, so adding or
// reordering arguments leaves the others' data unchanged. All float types
// (f32, f16, bf16, the block types) share one stream: a bf16 or q8_0 param
// is exactly the f32 param of the same name and shape, rounded or quantised,
// so a model and its quantised variant can be compared.
//
//   float input     uniform in [-1, 1) (24-bit resolution)
//   float {param}   the same, times 1/sqrt(innermost dim), so a matmul over
//                   that dim keeps activations O(1)
//   f16/bf16        generated as f32, then rounded
//   q8_0/q4_0/mxfp4 generated as f32 (as a float param), then quantised
//   i32             uniform in [0, n): n is the number of ids the argument
//                   can select where the function says (idBound: the experts
//                   of a matmul_id/add_id it routes, the entries of a gather
//                   axis), so every valid id occurs -- not only the first k;
//                   else the innermost dim (0 for rank 0)
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/IR.h"
#include "runtime/Tensor.h"

namespace moe {

/// A random tensor for argument `name` (without '%'); i32 values lie in
/// [0, idBound), or [0, innermost dim) when idBound is 0.
llvm::Expected<Tensor> randomTensor(uint64_t seed, llvm::StringRef name, ElemType elem,
                                    llvm::ArrayRef<int64_t> shape, bool isParam,
                                    int64_t idBound = 0);

/// How many ids an i32 value can select: the smallest static count among
/// its uses as ids (a matmul_id's or add_id's experts, a gather's axis),
/// seen through view-like ops; 0 when it has no such use.
int64_t idBound(const Value &v);

/// Random values for every argument of `f`, in argument order, with shapes
/// evaluated under `syms`.
llvm::Expected<std::vector<Tensor>> randomArguments(const Function &f,
                                                    const SymbolBindings &syms,
                                                    uint64_t seed);

} // namespace moe
