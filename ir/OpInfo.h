//===- OpInfo.h - Op kinds, traits and attribute specs ----------*- C++ -*-===//
//
// The C++ view of the op table in Ops.def: an enum of op kinds and, per kind,
// its name, operand counts, traits, attribute specs and shape rule.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/Attribute.h"
#include "llvm/Support/Error.h"

namespace moe {

namespace Trait {
enum : uint32_t {
  None = 0,
  Elementwise = 1u << 0, ///< result[i] depends on operand[i] (broadcast) only
  ViewLike = 1u << 1,    ///< rearranges elements, computes nothing
  Commutative = 1u << 2, ///< operands 0 and 1 may be swapped
  Reduction = 1u << 3,   ///< combines elements along an axis
  LinearIn0 = 1u << 4,   ///< linear in operand 0 (others fixed)
  LinearIn1 = 1u << 5,   ///< linear in operand 1 (others fixed)
  Additive = 1u << 6,    ///< a sum of operands 0 and 1 (add, sub), or of operand 0
                         ///< and a term the others index (add_id x, b, ids: b[ids])
  Collective = 1u << 7,  ///< communicates between ranks
  Terminator = 1u << 8,
  LinearIn0WithoutBias = 1u << 9, ///< linear in operand 0 when the `bias` attribute is 0
  /// linear in operand 0 when the `act` attribute is f32: q8_0 or bf16
  /// activations are rounded (per block of 32, per element) before the
  /// product, and rounding is not linear
  LinearIn0WithExactAct = 1u << 10,
};
}

enum class OpKind : uint16_t {
#define OP(E, N, MIN, MAX, NRES, TRAITS, QUANT, ATTRS, SHAPE, SUMMARY) E,
#include "ir/Ops.def"
};

/// One attribute an op accepts.
struct AttrSpec {
  enum class Kind { Int, Float, Flag, Dim, Dims, Ints, Elem, Number };
  std::string name;
  Kind kind;
  bool optional = false;
  std::optional<Attribute> dflt;
};

struct OpInfo;
/// Computes an op's result type from its operand types and attributes. The
/// symbol ranges let a rule prove bounds (a slice inside its input for every
/// T in range). Errors are messages without the op name; callers prefix it.
using ShapeRule = llvm::Expected<TensorType> (*)(
    const OpInfo &, llvm::ArrayRef<TensorType> operands, const AttrDict &attrs,
    const SymbolRanges &ranges);

struct OpInfo {
  OpKind kind;
  llvm::StringRef name;
  int minOperands, maxOperands; ///< max -1: variadic
  unsigned numResults;
  uint32_t traits;
  uint32_t quantOperands;
  std::vector<AttrSpec> attrs;
  ShapeRule shapeRule;
  llvm::StringRef summary;

  bool has(uint32_t t) const { return (traits & t) == t; }
  const AttrSpec *findAttr(llvm::StringRef n) const;
  /// The attribute as written, else its declared default, else null.
  const Attribute *attrOrDefault(const AttrDict &d, llvm::StringRef n) const;
};

const OpInfo &getOpInfo(OpKind k);
const OpInfo *lookupOp(llvm::StringRef name);
llvm::ArrayRef<OpInfo> allOps();

llvm::StringRef attrKindName(AttrSpec::Kind k);

class Operation;

/// Is `op` linear in operand `i`, the others fixed? The table's LinearIn0 and
/// LinearIn1 (the latter for every later operand of a variadic op), and the
/// conditional traits read against the op's attributes: `scale` is linear
/// only when its bias is 0 (LinearIn0WithoutBias), matmul and matmul_id in
/// their activations only with act = f32 (LinearIn0WithExactAct). Passes ask this instead
/// of listing op kinds.
bool isLinearIn(const Operation &op, unsigned i);

/// Does operand `i` enter `op`'s result as a term of a sum (Trait::Additive)?
/// Both operands of `add` and `sub`; of `add_id x, b, ids` only x (b enters
/// indexed by ids). Such an op is affine in that operand: linear once the
/// other term is dropped.
bool isSummandIn(const Operation &op, unsigned i);

/// Normalise a possibly negative axis against a rank; nullopt if out of range.
std::optional<int64_t> normalizeAxis(int64_t axis, int64_t rank);

} // namespace moe
