//===- SplitGateUp.cpp - Split a pre-merged gate_up projection ------------===//
//
// The inverse of merge-up-gate, for models stored pre-merged: an expert
// projection on a [E, 2N, K] param (`matmul_id x, W, ids` [+ `add_id`])
// whose every user is a slice along the last axis taking exactly the lower
// half [0, N) (gate) or the upper half [N, 2N) (up) becomes two projections
// on params derived from W's halves (ir/ParamDerive.h: built once when
// params are bound). Refuses, with a remark, when the users are not exact
// halves (whyNotSplit). Matches from each matmul_id along use-def edges.
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
      if (!slicedOnAxis2(*p))
        continue; // not a gate_up candidate: no remark
      std::vector<Operation *> lower, upper;
      if (auto why = whyNotSplit(*p, n2, lower, upper)) {
        ctx.diag.opRemark(mm, "gate_up not split: " + *why);
        ++numRefused;
        continue;
      }
      if (auto e = split(f, *p, *n2 / 2, lower, upper))
        return e;
      ++numSplit;
      changed = true;
    }
    return changed;
  }

private:
  /// A candidate: every user of the projection slices its rows (axis 2).
  static bool slicedOnAxis2(const ExpertProj &p) {
    std::vector<Operation *> users = p.result()->getUsers();
    bool allSlices = !users.empty();
    for (auto *u : users)
      allSlices &= u->is(OpKind::Slice) &&
                   normalizeAxis(u->getAttr("axis")->getInt(), 3) == int64_t(2);
    return allSlices;
  }

  /// Legality, sorting the projection's users into gate (lower) and up
  /// (upper) halves on the way.
  static Refusal whyNotSplit(const ExpertProj &p, std::optional<int64_t> n2,
                             std::vector<Operation *> &lower, std::vector<Operation *> &upper) {
    if (p.weight->argAttrs().has("derive") || p.weight->argAttrs().has("shard_axis"))
      return "the weight is already derived or sharded";
    if (!n2 || *n2 % 2)
      return fmt::format("the weight's row count {} is not even",
                         p.weight->getType().dims[1].str());
    int64_t n = *n2 / 2;
    for (auto *u : p.result()->getUsers()) {
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
    return std::nullopt;
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

  static llvm::Error split(Function &f, const ExpertProj &p, int64_t n,
                           const std::vector<Operation *> &lower,
                           const std::vector<Operation *> &upper) {
    Builder b(f);
    b.setInsertionPoint(p.matmul);
    b.setLoc(p.matmul->getLoc());
    auto proj = [&](const char *half, int64_t start,
                    const std::vector<Operation *> &users) -> llvm::Error {
      Value *w = halfParam(f, p.weight, half, start, n);
      // The halves keep the projection's attributes (its activation precision).
      const std::string &name = users[0]->getResult()->getName();
      auto r = b.createValue(OpKind::MatmulId, {p.x, w, p.ids}, p.matmul->attrs(), name);
      if (r && p.bias)
        r = b.createValue(OpKind::AddId, {*r, halfParam(f, p.biasParam, half, start, n), p.ids},
                          {}, name + "_b");
      if (!r)
        return r.takeError();
      for (auto *u : users) {
        u->getResult()->replaceAllUsesWith(*r);
        u->erase();
      }
      return llvm::Error::success();
    };
    if (auto e = proj("gate", 0, lower))
      return e;
    if (auto e = proj("up", n, upper))
      return e;
    if (p.bias)
      p.bias->erase();
    p.matmul->erase();
    return llvm::Error::success();
  }
};
} // namespace

std::unique_ptr<Pass> moe::createSplitGateUpPass(const PassOptions &o) {
  return std::make_unique<SplitGateUpPass>(o);
}
