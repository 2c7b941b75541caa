//===- Spmd.cpp - Functions split over ranks ------------------------------===//
#include "ir/Spmd.h"

#include "fmt/format.h"

using namespace moe;

int64_t moe::numRanks(const Function &f) { return f.attrs().getInt("ranks", 1); }

SymbolBindings moe::rankBindings(const Function &f, int64_t rank) {
  SymbolBindings b;
  for (auto &s : f.symbols())
    if (auto *a = f.attrs().get(s.name))
      if (auto v = a->asInts(); v && rank < (int64_t)v->size())
        b[s.name] = (*v)[rank];
  return b;
}

std::optional<ShardSpec> moe::getShardSpec(const Value &arg) {
  const AttrDict &a = arg.argAttrs();
  if (!a.has("shard_axis"))
    return std::nullopt;
  return ShardSpec{a.getInt("shard_axis", 0), a.getInt("shard_segments", 1)};
}

TensorType moe::fullParamType(const Function &f, const Value &arg) {
  TensorType t = arg.getType();
  auto spec = getShardSpec(arg);
  if (!spec || spec->axis < 0 || spec->axis >= t.rank())
    return t;
  DimExpr sum(0);
  for (int64_t r = 0; r < numRanks(f); ++r) {
    DimExpr d = t.dims[spec->axis];
    for (auto &e : rankBindings(f, r))
      d = d.substitute(e.getKey(), DimExpr(e.getValue()));
    sum = sum + d;
  }
  t.dims[spec->axis] = sum;
  return t;
}

std::vector<std::pair<int64_t, int64_t>> moe::shardRanges(const Function &f, const Value &arg,
                                                           int64_t rank,
                                                           const SymbolBindings &syms) {
  auto spec = getShardSpec(arg);
  std::vector<std::pair<int64_t, int64_t>> out;
  if (!spec)
    return out;
  auto localOf = [&](int64_t r) {
    SymbolBindings b = syms;
    for (auto &e : rankBindings(f, r))
      b[e.getKey()] = e.getValue();
    return arg.getType().dims[spec->axis].evaluate(b).value_or(0) / spec->segments;
  };
  int64_t segLen = 0, offset = 0;
  for (int64_t r = 0; r < numRanks(f); ++r) {
    if (r < rank)
      offset += localOf(r);
    segLen += localOf(r);
  }
  int64_t local = localOf(rank);
  for (int64_t s = 0; s < spec->segments; ++s)
    out.push_back({s * segLen + offset, s * segLen + offset + local});
  return out;
}

llvm::DenseSet<const Value *> moe::rankLocalValues(const Function &f) {
  llvm::DenseSet<const Value *> local;
  for (auto *a : f.getArguments())
    if (getShardSpec(*a))
      local.insert(a);
  for (auto &op : f.getBody()) {
    if (op.is(OpKind::AllReduce) || op.getNumResults() == 0)
      continue;
    for (auto *v : op.getOperands())
      if (local.count(v)) {
        local.insert(op.getResult());
        break;
      }
  }
  return local;
}

std::optional<std::string> moe::checkSpmd(const Function &f) {
  const Attribute *ranksAttr = f.attrs().get("ranks");
  int64_t ranks = 1;
  if (ranksAttr) {
    if (!ranksAttr->isInt() || ranksAttr->getInt() < 1)
      return fmt::format("'ranks' must be an integer >= 1, got {}", ranksAttr->str());
    ranks = ranksAttr->getInt();
  }
  for (auto &s : f.symbols()) {
    const Attribute *a = f.attrs().get(s.name);
    if (!a)
      continue;
    auto v = a->asInts();
    if (!ranksAttr)
      return fmt::format("rank-dependent symbol '{}' needs a 'ranks' attribute", s.name);
    if (!v || (int64_t)v->size() != ranks)
      return fmt::format("rank-dependent symbol '{}' must list {} integers (one per rank), "
                         "got {}", s.name, ranks, a->str());
    for (int64_t x : *v)
      if (x < s.lo || x > s.hi)
        return fmt::format("rank-dependent symbol '{}' = {} is outside its range [{}, {}]",
                           s.name, x, s.lo, s.hi);
  }
  for (auto *arg : f.getArguments()) {
    const AttrDict &a = arg->argAttrs();
    if (!a.has("shard_axis") && !a.has("shard_segments"))
      continue;
    std::string who = "param %" + arg->getName();
    if (!arg->isParam())
      return who + ": only a {param} can be sharded";
    if (!ranksAttr)
      return who + ": sharded, but the function has no 'ranks' attribute";
    const Attribute *ax = a.get("shard_axis");
    if (!ax || !ax->isInt() || ax->getInt() < 0 || ax->getInt() >= arg->getType().rank())
      return who + fmt::format(": shard_axis must be an axis of {}", arg->getType().str());
    const Attribute *seg = a.get("shard_segments");
    if (seg && (!seg->isInt() || seg->getInt() < 1))
      return who + ": shard_segments must be an integer >= 1";
    int64_t segments = seg ? seg->getInt() : 1;
    const DimExpr &d = arg->getType().dims[ax->getInt()];
    std::vector<std::string> syms;
    d.collectSymbols(syms);
    bool rankDep = false;
    for (auto &s : syms)
      rankDep |= f.attrs().has(s);
    if (!rankDep)
      return who + fmt::format(": the shard axis dim {} does not depend on a rank symbol",
                               d.str());
    if (!d.divExact(segments))
      return who + fmt::format(": the shard axis dim {} is not {} equal segments", d.str(),
                               segments);
  }
  return std::nullopt;
}
