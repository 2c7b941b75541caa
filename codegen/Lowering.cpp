//===- Lowering.cpp - The table of op lowerings ---------------------------===//
//
// One OpLowering per row of ir/Ops.def, in its order; the lowerings
// themselves are declared in Lowering.h, by family.
//
//===----------------------------------------------------------------------===//
#include "codegen/Lowering.h"

using namespace moe;
using namespace moe::codegen;

static constexpr OpLowering kLower[] = {
#define OP(E, N, MIN, MAX, NRES, TRAITS, QUANT, ATTRS, SHAPE, SUMMARY) lower##E,
#include "ir/Ops.def"
};
static constexpr size_t kNumOps = 0
#define OP(E, N, MIN, MAX, NRES, TRAITS, QUANT, ATTRS, SHAPE, SUMMARY) +1
#include "ir/Ops.def"
    ;
static_assert(std::size(kLower) == kNumOps, "one lowering per op");

const OpLowering &codegen::loweringOf(OpKind k) { return kLower[(size_t)k]; }
