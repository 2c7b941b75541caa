//===- SplitGateUp.cpp - Split a pre-merged gate_up projection ------------===//
//
// The inverse of merge-up-gate, for models stored pre-merged: an expert
// projection on a [E, 2N, K] param (`matmul_id x, W, ids` [+ `add_id`])
// whose every user is a slice along the last axis taking exactly the lower
// half [0, N) (gate) or the upper half [N, 2N) (up) becomes two projections
// on params derived from W's halves (ir/ParamDerive.h: built once when
// params are bound). Refuses, with a remark, when the users are not exact
// halves. Matches from each matmul_id along use-def edges.
//
//===----------------------------------------------------------------------===//
#include "passes/ExpertMatch.h"
#include "passes/Pass.h"
#include "ir/Builder.h"
#include "ir/ParamDerive.h"

#include "fmt/format.h"

using namespace moe;

namespace {

/// `ffn_gate_up_exps` -> `ffn_gate_exps` / `ffn_up_exps`; else W_gate, W_up.
std::string halfName(const Function &f, llvm::StringRef merged, llvm::StringRef half) {
  size_t p = merged.find("gate_up");
  if (p != llvm::StringRef::npos)
    return freshArgName(f, (merged.substr(0, p) + half + merged.substr(p + 7)).str());
  return freshArgName(f, (merged + "_" + half).str());
}

class SplitGateUpPass : public Pass {
public:
  explicit SplitGateUpPass(const PassOptions &) {}
  Statistic numSplit{this, "num-split", "gate_up projections split into gate and up"};
  Statistic numRefused{this, "num-refused", "candidates refused (remark emitted)"};

  llvm::Expected<bool> runOnFunction(Function &f, PassContext &ctx) override {
    std::vector<Operation *> cands;
    for (auto &op : f.getBody())
      if (op.is(OpKind::MatmulId))
        cands.push_back(&op);
    bool changed = false;
    for (Operation *mm : cands) {
      Value *out = mm->getResult();
      if (out->hasOneUse() && out->getUses()[0].user->is(OpKind::AddId))
        out = out->getUses()[0].user->getResult();
      auto p = matchExpertProj(out);
      if (!p || p->matmul != mm)
        continue;
      auto n2 = p->weight->getType().dims[1].getConstant();
      std::vector<Operation *> lower, upper;
      std::string why = classify(*p, n2, lower, upper);
      if (!why.empty()) {
        if (!why.starts_with("-")) { // "-" marks non-candidates: no remark
          ctx.diag.opRemark(mm, "gate_up not split: " + why);
          ++numRefused;
        }
        continue;
      }
      split(f, *p, *n2 / 2, lower, upper);
      ++numSplit;
      changed = true;
    }
    return changed;
  }

private:
  /// Sorts the projection's users into gate (lower) and up (upper) halves.
  static std::string classify(const ExpertProj &p, std::optional<int64_t> n2,
                              std::vector<Operation *> &lower, std::vector<Operation *> &upper) {
    std::vector<Operation *> users = p.result()->getUsers();
    bool allSlices = !users.empty();
    for (auto *u : users)
      allSlices &= u->is(OpKind::Slice) &&
                   normalizeAxis(u->getAttr("axis")->getInt(), 3) == int64_t(2);
    if (!allSlices)
      return "-";
    if (p.weight->argAttrs().has("derive") || p.weight->argAttrs().has("shard_axis"))
      return "the weight is already derived or sharded";
    if (!n2 || *n2 % 2)
      return fmt::format("the weight's row count {} is not even",
                         p.weight->getType().dims[1].str());
    int64_t n = *n2 / 2;
    for (auto *u : users) {
      auto start = u->getAttr("start")->getDim().getConstant();
      auto size = u->getAttr("size")->getDim().getConstant();
      if (start == 0 && size == n)
        lower.push_back(u);
      else if (start == n && size == n)
        upper.push_back(u);
      else
        return fmt::format("a slice takes [{}, {}+{}), not a half of {}",
                           u->getAttr("start")->str(), u->getAttr("start")->str(),
                           u->getAttr("size")->str(), *n2);
    }
    if (lower.empty() || upper.empty())
      return "only one half is used";
    return "";
  }

  static Value *halfParam(Function &f, Value *w, const char *half, int64_t start, int64_t n) {
    TensorType t = w->getType();
    t.dims[1] = DimExpr(n);
    AttrDict a;
    a.set("param", Attribute::getBool(true));
    Value *h = f.addArgument(t, halfName(f, w->getName(), half), a);
    setDerivation(*h, {ParamDerivation::Kind::Slice, {w->getName()}, 1, start, n});
    return h;
  }

  static void split(Function &f, const ExpertProj &p, int64_t n,
                    const std::vector<Operation *> &lower, const std::vector<Operation *> &upper) {
    Builder b(f);
    b.setInsertionPoint(p.matmul);
    b.setLoc(p.matmul->getLoc());
    auto proj = [&](const char *half, int64_t start, const std::vector<Operation *> &users) {
      Value *w = halfParam(f, p.weight, half, start, n);
      // The halves keep the projection's attributes (its activation precision).
      Value *r = cantFail(b.create(OpKind::MatmulId, {p.x, w, p.ids}, p.matmul->attrs(),
                                   users[0]->getResult()->getName()))->getResult();
      if (p.bias) {
        Value *bias = halfParam(f, p.biasParam, half, start, n);
        r = cantFail(b.create(OpKind::AddId, {r, bias, p.ids}, {},
                              users[0]->getResult()->getName() + "_b"))->getResult();
      }
      for (auto *u : users) {
        u->getResult()->replaceAllUsesWith(r);
        u->erase();
      }
    };
    proj("gate", 0, lower);
    proj("up", n, upper);
    if (p.bias)
      p.bias->erase();
    p.matmul->erase();
  }
};
} // namespace

std::unique_ptr<Pass> moe::createSplitGateUpPass(const PassOptions &o) {
  return std::make_unique<SplitGateUpPass>(o);
}
