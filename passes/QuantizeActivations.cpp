//===- QuantizeActivations.cpp - Activation precision from the weight type ===//
//
// Sets `act` on every matmul/matmul_id that has none to its weight type's
// vec_dot_type, as ggml's CPU backend does (vecDotType() in ir/ShapeRules.h):
// q8_0 for q8_0/q4_0/mxfp4 weights, bf16 for bf16; f32 and f16 weights keep
// f32 activations and the op is left as it is. An op that already has `act`
// is never changed, so a written `act = f32` keeps the exact path.
//
// Legal on any verified function: the verifier accepts exactly these
// combinations (block weights guarantee K % 32 == 0). It changes results by
// the quantisation of the activations, within the bound numericTolerance()
// states (docs/Passes.md), which --verify-numerics uses for this pass. It reads
// only each op's weight type, so it runs after every pass that creates or
// retypes matmuls (merge-up-gate, split-gate-up, tp-split) and before
// codegen; it is not yet in `default` (the JIT does not implement `act`).
//
//===----------------------------------------------------------------------===//
#include "passes/Pass.h"

#include "ir/ShapeRules.h"

#include <algorithm>

using namespace moe;

namespace {
class QuantizeActivationsPass : public Pass {
public:
  explicit QuantizeActivationsPass(const PassOptions &) {}
  Statistic numQ8{this, "num-q8_0", "matmuls given act = q8_0"};
  Statistic numBf16{this, "num-bf16", "matmuls given act = bf16"};

  /// The bound on the relative error of the function's results (max |error|
  /// / max |result|) that the precisions set in the last function imply,
  /// with room for what a layer adds around its matmuls (docs/Passes.md has
  /// the derivation and the measured errors). q8_0: each activation moves by
  /// at most d/2 = amax/254 of its block (plus the f16 rounding of d,
  /// 2^-11 relative), so a dot product moves by about 2^-8 of the largest
  /// output; a layer chains two such products: 8 * 2^-8. bf16: each
  /// activation moves by at most 2^-9 of itself: 2 * 2^-8.
  double numericTolerance() const override { return tolerance; }

  llvm::Expected<bool> runOnFunction(Function &f, PassContext &) override {
    bool changed = false;
    tolerance = 0;
    for (auto &op : f.getBody()) {
      if (!(op.is(OpKind::Matmul) || op.is(OpKind::MatmulId)) || op.attrs().has("act"))
        continue;
      ElemType act = vecDotType(op.getOperand(1)->getType().elem);
      if (act == ElemType::F32)
        continue;
      op.attrs().set("act", Attribute::getIdent(elemTypeName(act).str()));
      ++(act == ElemType::Q8_0 ? numQ8 : numBf16);
      tolerance = std::max(tolerance, act == ElemType::Q8_0 ? 8 * 0x1p-8 : 2 * 0x1p-8);
      changed = true;
    }
    return changed;
  }

private:
  double tolerance = 0;
};
} // namespace

std::unique_ptr<Pass> moe::createQuantizeActivationsPass(const PassOptions &o) {
  return std::make_unique<QuantizeActivationsPass>(o);
}
