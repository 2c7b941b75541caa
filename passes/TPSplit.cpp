//===- TPSplit.cpp - Tensor-parallel split of the experts -----------------===//
//
// Splits each expert FFN (and each dense/shared-expert MLP) along n_ff over
// `ranks` ranks: up and gate weights column-parallel, down weights
// row-parallel, up/gate biases with their columns; router, routing weights,
// per-expert scales and the down bias stay replicated; an `all_reduce{sum}`
// goes right after the partial down projection (the naive placement that
// delay-allreduce then improves). A pre-merged gate_up weight is split as
// two segments per rank (that rank's gate rows and its up rows). A
// projection may be scaled before its bias by a factor constant along n_ff
// (llama.cpp's per-expert scales, build_ffn's [1] scales: a mul whose other
// operand has a last dim of 1), which splitting leaves as it is, and the
// activation may be ungated (silu(up) -> down).
//
// The per-rank shard size is a rank-dependent symbol: n_ff becomes `g*F`
// (g the granularity) with `F` declared on the function and its value per
// rank listed in the function attributes (`attributes {ranks = 3,
// F = [1, 1, 0]}`), so shards may be uneven or empty and every type stays
// exact. Params keep their whole-model meaning: `shard_axis` (and
// `shard_segments` for gate_up) tell the binder which rows a rank takes.
// Legal for any float weight; a block-quantised weight split along its
// innermost axis (down) needs g a multiple of its block (32). Gate and up
// may be of different types: each is sharded on its own (merge-up-gate is
// what needs them equal). An FFN whose column-parallel
// values (up/gate results, gate_up slices) or split weights have users
// outside it is left whole, with a remark: they would escape as shards
// (whyNotSplit). The projections matched are ExpertMatch.h's. Run after
// merge-up-gate.
//
//===----------------------------------------------------------------------===//
#include "passes/ExpertMatch.h"
#include "passes/Pass.h"
#include "ir/Builder.h"
#include "ir/Error.h"
#include "ir/ParamDerive.h"

#include "fmt/format.h"

using namespace moe;

namespace {

/// One FFN: the projections feeding its activation (found by structure:
/// `up` alone when ungated, `gate` and `up`, or `merged` and its two slices)
/// and, once legal, what is split and where the partial sum is produced.
struct FfnMatch {
  Operation *glu = nullptr;
  std::optional<ExpertProj> gate, up, merged;
  Operation *gateSlice = nullptr, *upSlice = nullptr;
  std::vector<std::pair<Value *, int64_t>> colParams; ///< (param, axis) split by columns
  Value *mergedWeight = nullptr, *mergedBias = nullptr; ///< gate_up: two segments
  std::vector<Operation *> mergedSlices;
  Value *downWeight = nullptr;
  int64_t downAxis = 0;
  Operation *downOp = nullptr; ///< where the partial sum is produced
  int64_t n = 0;               ///< n_ff
};

/// An ungated activation between an up and a down projection (llama's
/// experts without ffn_gate_exps: silu(up)).
bool isUngatedAct(const Operation &op) {
  return op.is(OpKind::Silu) || op.is(OpKind::Gelu) || op.is(OpKind::GeluErf) ||
         op.is(OpKind::Relu);
}

/// Every user of `v` is one of `ops` (a value or param that is split must not
/// be seen whole, or per rank, by anything outside the FFN).
bool onlyUsedBy(const Value *v, std::initializer_list<const Operation *> ops) {
  for (auto *u : v->getUsers())
    if (std::find(ops.begin(), ops.end(), u) == ops.end())
      return false;
  return true;
}

/// The weights (and biases) of the gate and up projections feed only them.
bool paramsPrivate(const ExpertProj &g, const ExpertProj &u) {
  for (auto *p : {&g, &u})
    if (!onlyUsedBy(p->weight, {g.matmul, u.matmul}) ||
        (p->biasParam && !onlyUsedBy(p->biasParam, {g.bias, u.bias})))
      return false;
  return true;
}

/// Axis of n_ff in a column-parallel (up/gate) weight: [E, N, K] or [N, K].
int64_t colAxis(const ExpertProj &p) { return p.matmul->is(OpKind::MatmulId) ? 1 : 0; }

class TPSplitPass : public Pass {
public:
  explicit TPSplitPass(const PassOptions &o)
      : ranks(o.getInt("ranks", 2)), granularity(o.getInt("granularity", 32)) {}
  Statistic numSplit{this, "num-ffns-split", "expert FFNs and MLPs split along n_ff"};
  Statistic numAllReduce{this, "num-all-reduces", "all_reduces inserted"};

  llvm::Expected<bool> runOnFunction(Function &f, PassContext &ctx) override {
    if (ranks < 1 || granularity < 1)
      return err("tp-split: ranks and granularity must be >= 1");
    if (f.attrs().has("ranks")) {
      ctx.diag.error(f.getLoc(), fmt::format("tp-split: @{} is already split for {} ranks",
                                             f.getName(), f.attrs().get("ranks")->str()));
      return false;
    }
    std::vector<FfnMatch> ffns;
    for (auto &op : f.getBody())
      if (isGlu(op) || isUngatedAct(op))
        if (auto m = findFfn(op)) {
          if (auto why = whyNotSplit(*m))
            ctx.diag.opRemark(&op, "not split: " + *why);
          else
            ffns.push_back(*m);
        }
    if (ffns.empty())
      return false;
    for (auto &m : ffns)
      if (auto why = whyNotGranular(m)) {
        ctx.diag.opError(why->first, why->second);
        return false;
      }
    f.attrs().set("ranks", Attribute::getInt(ranks));
    for (auto &m : ffns)
      split(f, m);
    // Re-derive every result type from the new param types.
    SymbolRanges r = f.symbolRanges();
    for (auto &op : f.getBody()) {
      if (op.is(OpKind::Return))
        continue;
      std::vector<TensorType> ts;
      for (auto *v : op.getOperands())
        ts.push_back(v->getType());
      auto t = op.is(OpKind::Constant)
                   ? llvm::Expected<TensorType>(op.getResult()->getType())
                   : inferResultType(op.getKind(), ts, op.attrs(), r);
      if (!t)
        return err("tp-split left '{}' ill-typed: {}", op.getName().str(),
                   llvm::toString(t.takeError()));
      op.getResult()->setType(*t);
    }
    for (auto &m : ffns)
      if (auto e = insertAllReduce(f, m))
        return e;
    return true;
  }

private:
  int64_t ranks, granularity;

  /// The FFN around activation `glu`, by structure alone; nullopt when
  /// there is none (no remark).
  static std::optional<FfnMatch> findFfn(Operation &glu) {
    FfnMatch m;
    m.glu = &glu;
    if (isUngatedAct(glu)) { // up -> act -> down
      if (!(m.up = matchProj(glu.getOperand(0))))
        return std::nullopt;
      return m;
    }
    m.gate = matchProj(glu.getOperand(0)), m.up = matchProj(glu.getOperand(1));
    if (m.gate && m.up)
      return m;
    // Pre-merged: both operands slice one projection on a [.., 2N, K] weight.
    Operation *sg = glu.getOperand(0)->getDefiningOp(), *su = glu.getOperand(1)->getDefiningOp();
    if (m.gate || m.up || !sg || !su || !sg->is(OpKind::Slice) || !su->is(OpKind::Slice) ||
        sg->getOperand(0) != su->getOperand(0) || !(m.merged = matchProj(sg->getOperand(0))))
      return std::nullopt;
    m.gateSlice = sg, m.upSlice = su;
    return m;
  }

  /// Legality of splitting `m`, filling in what is split: the remark's
  /// text, or none.
  static Refusal whyNotSplit(FfnMatch &m) {
    Operation &glu = *m.glu;
    if (!m.gate && !m.merged) { // ungated
      const ExpertProj &u = *m.up;
      auto n = u.weight->getType().dims[colAxis(u)].getConstant();
      if (!n)
        return std::string("the up weight's n_ff is dynamic");
      if (!onlyUsedBy(u.result(), {&glu}))
        return std::string("the up projection has users outside the FFN");
      if (!paramsPrivate(u, u))
        return std::string("the up weight or bias is used outside this FFN");
      m.n = *n;
      m.colParams = {{u.weight, colAxis(u)}};
      if (u.biasParam)
        m.colParams.push_back({u.biasParam, u.biasParam->getType().rank() - 1});
      return whyNotSplitDown(m);
    }
    if (m.merged) {
      const ExpertProj &p = *m.merged;
      Operation *sg = m.gateSlice, *su = m.upSlice;
      auto n2 = p.weight->getType().dims[colAxis(p)].getConstant();
      auto n = glu.getOperand(0)->getType().dims.back().getConstant();
      if (!n2 || !n || *n2 != 2 * *n || !sg->getAttr("start")->getDim().isConstant(0) ||
          !su->getAttr("start")->getDim().isConstant(*n))
        return std::string("the gate_up slices are not its two halves");
      if (!onlyUsedBy(p.result(), {sg, su}) || !onlyUsedBy(sg->getResult(), {&glu}) ||
          !onlyUsedBy(su->getResult(), {&glu}))
        return std::string("the gate_up projection or its slices have users outside the FFN");
      if (!paramsPrivate(p, p))
        return std::string("the gate_up weight or bias is used outside this FFN");
      m.n = *n;
      m.mergedWeight = p.weight;
      m.mergedBias = p.biasParam;
      m.mergedSlices = {sg, su};
      return whyNotSplitDown(m);
    }
    // Gate and up may differ in element type (GGUFs quantise them apart):
    // each is sharded on its own, by rows, on the one n_ff symbol the GLU
    // pairs them by; only their n_ff must agree (the verifier sees to it).
    const ExpertProj &g = *m.gate, &u = *m.up;
    // (The GLU's shape rule makes up's n_ff equal gate's.)
    auto n = g.weight->getType().dims[colAxis(g)].getConstant();
    if (!n)
      return std::string("the gate or up weight's n_ff is dynamic");
    if (!onlyUsedBy(g.result(), {&glu}) || !onlyUsedBy(u.result(), {&glu}))
      return std::string("the gate or up projection has users outside the FFN");
    if (!paramsPrivate(g, u))
      return std::string("a gate or up weight or bias is used outside this FFN");
    m.n = *n;
    m.colParams = {{g.weight, colAxis(g)}, {u.weight, colAxis(u)}};
    for (auto *p : {&g, &u})
      if (p->biasParam)
        m.colParams.push_back({p->biasParam, p->biasParam->getType().rank() - 1});
    return whyNotSplitDown(m);
  }

  /// The activation feeds exactly the down projection, whose weight is private.
  static Refusal whyNotSplitDown(FfnMatch &m) {
    Value *act = m.glu->getResult();
    if (!act->hasOneUse())
      return std::string("the activation has other users than the down projection");
    Operation *down = act->getUses()[0].user;
    if (act->getUses()[0].index != 0 || !(down->is(OpKind::MatmulId) || down->is(OpKind::Matmul)) ||
        !down->getOperand(1)->isParam())
      return std::string("the activation does not feed a down projection on a param");
    if (!onlyUsedBy(down->getOperand(1), {down}))
      return std::string("the down weight is used outside this FFN");
    m.downOp = down;
    m.downWeight = down->getOperand(1);
    m.downAxis = m.downWeight->getType().rank() - 1;
    for (auto *w : {m.downWeight, m.mergedWeight})
      if (w && (w->argAttrs().has("shard_axis")))
        return std::string("a weight is already sharded");
    return std::nullopt;
  }

  /// The granularity option against a legal FFN: an error, not a remark
  /// (the option is wrong, not the graph), with the op it concerns.
  std::optional<std::pair<Operation *, std::string>> whyNotGranular(const FfnMatch &m) const {
    if (m.n % granularity)
      return std::pair(m.glu, fmt::format("tp-split: n_ff = {} is not a multiple of the "
                                          "granularity {}", m.n, granularity));
    // Each split weight is held to its own type's granularity: a
    // block-quantised weight split along its innermost (block) axis needs
    // shard boundaries on its blocks. Up, gate (whatever their types) and
    // gate_up are split by rows, which any granularity keeps whole; down is
    // split along its innermost axis.
    ElemType e = m.downWeight->getType().elem;
    if (isQuantized(e) && granularity % blockElems(e))
      return std::pair(m.downOp, fmt::format("tp-split: the down weight is {} and is split "
                                             "along its innermost axis: granularity {} must be "
                                             "a multiple of {}", elemTypeName(e).str(),
                                             granularity, blockElems(e)));
    return std::nullopt;
  }

  /// Declares the rank symbol of an FFN: its per-rank unit counts, as even as
  /// possible, earlier ranks taking the remainder (later ones may get none).
  DimExpr declareSymbol(Function &f, int64_t n) {
    std::string name = "F";
    for (int i = 1; f.lookupSymbol(name); ++i)
      name = "F" + std::to_string(i);
    int64_t units = n / granularity, base = units / ranks, extra = units % ranks;
    std::vector<int64_t> per;
    for (int64_t r = 0; r < ranks; ++r)
      per.push_back(base + (r < extra ? 1 : 0));
    f.symbols().push_back(SymbolDecl{name, base, base + (extra ? 1 : 0), f.getLoc()});
    f.attrs().set(name, Attribute::getInts(per));
    return DimExpr(granularity) * DimExpr::symbol(name);
  }

  static void shard(Value *p, int64_t axis, DimExpr local, int64_t segments = 1) {
    TensorType t = p->getType();
    t.dims[axis] = local * DimExpr(segments);
    p->setType(t);
    p->argAttrs().set("shard_axis", Attribute::getInt(axis));
    if (segments > 1)
      p->argAttrs().set("shard_segments", Attribute::getInt(segments));
  }

  void split(Function &f, FfnMatch &m) {
    DimExpr local = declareSymbol(f, m.n);
    for (auto &[p, axis] : m.colParams)
      shard(p, axis, local);
    if (m.mergedWeight) {
      shard(m.mergedWeight, m.mergedWeight->getType().rank() - 2, local, 2);
      if (m.mergedBias)
        shard(m.mergedBias, m.mergedBias->getType().rank() - 1, local, 2);
      m.mergedSlices[0]->attrs().set("size", Attribute::getDim(local));
      m.mergedSlices[1]->attrs().set("start", Attribute::getDim(local));
      m.mergedSlices[1]->attrs().set("size", Attribute::getDim(local));
    }
    shard(m.downWeight, m.downAxis, local);
    ++numSplit;
  }

  llvm::Error insertAllReduce(Function &f, const FfnMatch &m) {
    Builder b(f);
    b.setInsertionPointAfter(m.downOp);
    b.setLoc(m.downOp->getLoc());
    Value *partial = m.downOp->getResult();
    AttrDict a;
    a.set("sum", Attribute::getBool(true));
    auto sum = b.createValue(OpKind::AllReduce, {partial}, a,
                             partial->getName().empty() ? "" : partial->getName() + "_sum");
    if (!sum)
      return sum.takeError();
    for (auto &u : std::vector<Use>(partial->getUses()))
      if (u.user != (*sum)->getDefiningOp())
        u.user->setOperand(u.index, *sum);
    ++numAllReduce;
    return llvm::Error::success();
  }
};
} // namespace

std::unique_ptr<Pass> moe::createTPSplitPass(const PassOptions &o) {
  return std::make_unique<TPSplitPass>(o);
}
