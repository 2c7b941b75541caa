//===- ShapeRules.h - Result-type rules of the op table ---------*- C++ -*-===//
//
// One function per shape class, referenced by name from Ops.def. Each works on
// symbolic dims, so `T x 64` stays `T x 64` through every op.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/OpInfo.h"

namespace moe::shape_rules {
#define MOE_SHAPE_RULE(N)                                                      \
  llvm::Expected<TensorType> N(const OpInfo &, llvm::ArrayRef<TensorType>,     \
                               const AttrDict &, const SymbolRanges &);
MOE_SHAPE_RULE(inferMatmul)
MOE_SHAPE_RULE(inferMatmulId)
MOE_SHAPE_RULE(inferAddId)
MOE_SHAPE_RULE(inferBroadcast)
MOE_SHAPE_RULE(inferUnaryFloat)
MOE_SHAPE_RULE(inferCast)
MOE_SHAPE_RULE(inferGlu)
MOE_SHAPE_RULE(inferReduce)
MOE_SHAPE_RULE(inferSoftmax)
MOE_SHAPE_RULE(inferArgsort)
MOE_SHAPE_RULE(inferTopk)
MOE_SHAPE_RULE(inferNorm)
MOE_SHAPE_RULE(inferGather)
MOE_SHAPE_RULE(inferReshape)
MOE_SHAPE_RULE(inferPermute)
MOE_SHAPE_RULE(inferSlice)
MOE_SHAPE_RULE(inferConcat)
MOE_SHAPE_RULE(inferBroadcastTo)
MOE_SHAPE_RULE(inferView)
MOE_SHAPE_RULE(inferAllReduce)
MOE_SHAPE_RULE(inferConstant)
MOE_SHAPE_RULE(inferNone)
#undef MOE_SHAPE_RULE
} // namespace moe::shape_rules

namespace moe {
/// numpy broadcasting of two shapes; nullopt when incompatible.
std::optional<Shape> broadcastShapes(const Shape &a, const Shape &b);
/// True when `d` is provably <= `bound` for every symbol value in range.
bool provablyLE(const DimExpr &d, const DimExpr &bound, const SymbolRanges &r);

/// The activation precision of a matmul/matmul_id: its `act` attribute, f32
/// when absent (docs/IR.md, "Activation precision"). Precondition: the op
/// verified, so a written `act` names an element type.
ElemType activationType(const OpInfo &info, const AttrDict &attrs);
/// ggml's vec_dot_type for a weight type, as moe uses it: q8_0 for the block
/// types, bf16 for bf16, f32 (exact) for f32 and f16. The only `act` besides
/// f32 the verifier accepts with that weight type.
ElemType vecDotType(ElemType weight);
} // namespace moe
