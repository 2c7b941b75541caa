//===- ParamDerive.cpp - Params derived from other params -----------------===//
#include "ir/ParamDerive.h"
#include "ir/Error.h"
#include "ir/Spmd.h"

#include "fmt/format.h"
#include "llvm/ADT/StringSet.h"

using namespace moe;

llvm::Expected<std::optional<ParamDerivation>> moe::getDerivation(const Value &arg) {
  const AttrDict &a = arg.argAttrs();
  const Attribute *kind = a.get("derive");
  if (!kind)
    return std::nullopt;
  std::string who = "param %" + arg.getName();
  if (kind->kind() != Attribute::Kind::String ||
      (kind->getString() != "concat" && kind->getString() != "slice"))
    return err(who + ": 'derive' must be \"concat\" or \"slice\"");
  ParamDerivation d;
  d.kind = kind->getString() == "concat" ? ParamDerivation::Kind::Concat
                                         : ParamDerivation::Kind::Slice;
  const Attribute *from = a.get("from");
  if (!from || !from->isList() || from->getList().empty())
    return err(who + ": 'from' must be a non-empty list of param names");
  for (auto &e : from->getList()) {
    if (e.kind() != Attribute::Kind::String)
      return err(who + ": 'from' must list param names as strings");
    d.from.push_back(e.getString());
  }
  auto intAttr = [&](const char *n, int64_t &dst) -> llvm::Error {
    const Attribute *v = a.get(n);
    if (!v || !v->isInt())
      return err(who + ": derivation needs integer '" + n + "'");
    dst = v->getInt();
    return llvm::Error::success();
  };
  if (auto e = intAttr("axis", d.axis))
    return e;
  if (d.kind == ParamDerivation::Kind::Slice) {
    if (d.from.size() != 1)
      return err(who + ": a slice derives from exactly one param");
    if (auto e = intAttr("start", d.start))
      return e;
    if (auto e = intAttr("size", d.size))
      return e;
  }
  return d;
}

void moe::setDerivation(Value &arg, const ParamDerivation &d) {
  AttrDict &a = arg.argAttrs();
  a.set("derive", Attribute::getString(d.kind == ParamDerivation::Kind::Concat ? "concat"
                                                                               : "slice"));
  std::vector<Attribute> from;
  for (auto &s : d.from)
    from.push_back(Attribute::getString(s));
  a.set("from", Attribute::getList(from));
  a.set("axis", Attribute::getInt(d.axis));
  if (d.kind == ParamDerivation::Kind::Slice) {
    a.set("start", Attribute::getInt(d.start));
    a.set("size", Attribute::getInt(d.size));
  }
}

std::optional<std::string> moe::checkDerivations(const Function &f) {
  for (auto *arg : f.getArguments()) {
    auto d = getDerivation(*arg);
    if (!d)
      return llvm::toString(d.takeError());
    if (!*d)
      continue;
    std::string who = "param %" + arg->getName();
    if (!arg->isParam())
      return who + ": only a {param} can be derived";
    // Derivation works on whole params; sharding applies after it.
    const TensorType t = fullParamType(f, *arg);
    if ((*d)->axis < 0 || (*d)->axis >= t.rank())
      return who + fmt::format(": derivation axis {} out of range", (*d)->axis);
    if (isQuantized(t.elem) && (*d)->axis == t.rank() - 1)
      return who + ": cannot derive along the innermost axis of a block-quantised type";
    DimExpr total(0);
    for (auto &name : (*d)->from) {
      Value *src = f.lookupArgument(name);
      if (!src || !src->isParam())
        return who + ": derives from '" + name + "', which is not a param of @" + f.getName();
      if (src == arg)
        return who + ": derives from itself";
      const TensorType st = fullParamType(f, *src);
      if (st.elem != t.elem || st.rank() != t.rank())
        return who + fmt::format(": source %{} has type {}, incompatible with {}", name,
                                 st.str(), t.str());
      for (int64_t k = 0; k < t.rank(); ++k)
        if (k != (*d)->axis && st.dims[k] != t.dims[k])
          return who + fmt::format(": source %{} has type {}, incompatible with {}", name,
                                   st.str(), t.str());
      total = total + st.dims[(*d)->axis];
      if (d->value().kind == ParamDerivation::Kind::Slice) {
        auto n = st.dims[(*d)->axis].getConstant();
        if (!n || (*d)->start < 0 || (*d)->size < 0 || (*d)->start + (*d)->size > *n)
          return who + fmt::format(": slice [{}, {}) is outside axis {} of %{} ({})",
                                   (*d)->start, (*d)->start + (*d)->size, (*d)->axis, name,
                                   st.dims[(*d)->axis].str());
        total = DimExpr((*d)->size);
      }
    }
    if (total != t.dims[(*d)->axis])
      return who + fmt::format(": the derivation gives {} along axis {}, the type has {}",
                               total.str(), (*d)->axis, t.dims[(*d)->axis].str());
  }
  // Cycles: a derived param whose sources lead back to it.
  for (auto *arg : f.getArguments()) {
    llvm::StringSet<> seen;
    std::vector<std::string> work{arg->getName()};
    while (!work.empty()) {
      std::string n = work.back();
      work.pop_back();
      Value *v = f.lookupArgument(n);
      auto d = v ? getDerivation(*v) : llvm::Expected<std::optional<ParamDerivation>>(std::nullopt);
      if (!d) {
        llvm::consumeError(d.takeError());
        continue;
      }
      if (!*d)
        continue;
      for (auto &s : (*d)->from) {
        if (s == arg->getName())
          return "param %" + arg->getName() + ": derivation cycle";
        if (seen.insert(s).second)
          work.push_back(s);
      }
    }
  }
  return std::nullopt;
}
