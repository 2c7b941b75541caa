//===- Verifier.cpp - Structural and shape checks -------------------------===//
#include "ir/Verifier.h"

#include <limits>
#include "ir/Error.h"
#include "ir/Builder.h"
#include "ir/ParamDerive.h"
#include "ir/Spmd.h"

#include "fmt/format.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringSet.h"

using namespace moe;

static bool attrMatches(const AttrSpec &s, const Attribute &a) {
  using K = AttrSpec::Kind;
  switch (s.kind) {
  case K::Int: return a.isInt();
  case K::Float: return a.isNumber();
  case K::Flag: return a.kind() == Attribute::Kind::Bool;
  case K::Dim: return a.isDimLike();
  case K::Dims: return a.asDims().has_value();
  case K::Ints: return a.asInts().has_value();
  case K::Elem:
    return a.kind() == Attribute::Kind::Ident && parseElemType(a.getIdent());
  case K::Number:
    if (a.isNumber())
      return true;
    if (!a.isList())
      return false;
    for (auto &e : a.getList())
      if (!e.isNumber())
        return false;
    return true;
  }
  return false;
}

static llvm::Error checkConstant(const AttrDict &attrs, const TensorType *t) {
  if (!t)
    return err("requires a written result type (': tensor<...>')");
  if (isQuantized(t->elem))
    return err("cannot be block-quantised");
  auto *v = attrs.get("value");
  if (v && t->elem == ElemType::I32)
    for (auto &e : v->isList() ? v->getList() : std::vector<Attribute>{*v})
      if (e.isNumber() && e.getNumber() != (double)(int64_t)e.getNumber())
        return err("an i32 constant needs integer values, got {}", e.str());
  if (v && v->isList()) {
    auto n = t->numElements().getConstant();
    if (!n)
      return err("a dense value list needs a static type, got {}", t->str());
    if ((int64_t)v->getList().size() != *n)
      return err("value list has {} elements, the type {} has {}", v->getList().size(),
                 t->str(), *n);
  }
  return llvm::Error::success();
}

llvm::Expected<TensorType> moe::checkOp(OpKind kind, llvm::ArrayRef<TensorType> operands,
                                        const AttrDict &attrs, const SymbolRanges &ranges,
                                        const TensorType *writtenType) {
  const OpInfo &info = getOpInfo(kind);
  int n = operands.size();
  if (n < info.minOperands || (info.maxOperands >= 0 && n > info.maxOperands)) {
    if (info.minOperands == info.maxOperands)
      return err("expects {} operand{}, got {}", info.minOperands,
                 info.minOperands == 1 ? "" : "s", n);
    if (info.maxOperands < 0)
      return err("expects at least {} operand{}, got {}", info.minOperands,
                 info.minOperands == 1 ? "" : "s", n);
    return err("expects {} to {} operands, got {}", info.minOperands, info.maxOperands, n);
  }
  for (auto &[name, a] : attrs) {
    auto *spec = info.findAttr(name);
    if (!spec)
      return err("has no attribute '{}'{}", name,
                 info.attrs.empty() ? "" : " (expected " + [&] {
                   std::string s;
                   for (auto &x : info.attrs)
                     s += (s.empty() ? "" : ", ") + x.name;
                   return s;
                 }() + ")");
    if (!attrMatches(*spec, a)) {
      // Declared symbols parse as dims: a bare name where a dim goes is not one.
      bool dims = spec->kind == AttrSpec::Kind::Dim || spec->kind == AttrSpec::Kind::Dims;
      for (auto &e : a.isList() ? a.getList() : std::vector<Attribute>{a})
        if (dims && e.kind() == Attribute::Kind::Ident)
          return err("attribute '{}' uses undeclared symbol '{}'", name, e.getIdent());
      return err("attribute '{}' must be {}, got {}", name,
                 attrKindName(spec->kind).str(), a.str());
    }
  }
  for (auto &spec : info.attrs)
    if (!spec.optional && !attrs.has(spec.name))
      return err("requires attribute '{}' ({})", spec.name, attrKindName(spec.kind).str());
  for (int i = 0; i < n; ++i)
    if (isQuantized(operands[i].elem) && !(info.quantOperands & (1u << i)))
      return err("operand #{} cannot be block-quantised ({})", i, operands[i].str());
  if (kind == OpKind::Clamp && !attrs.has("min") && !attrs.has("max"))
    return err("requires 'min', 'max' or both");
  if (kind == OpKind::Clamp && attrs.has("min") && attrs.has("max") &&
      attrs.get("min")->isNumber() && attrs.get("max")->isNumber() &&
      attrs.get("min")->getNumber() > attrs.get("max")->getNumber())
    return err("min {} is greater than max {}", attrs.get("min")->str(), attrs.get("max")->str());
  if (kind == OpKind::Constant) {
    if (auto e = checkConstant(attrs, writtenType))
      return e;
    if (auto d = negativeDim(*writtenType, ranges))
      return err("result type {} has dim {}, which may be negative", writtenType->str(),
                 d->str());
    return *writtenType;
  }
  return info.shapeRule(info, operands, attrs, ranges);
}

std::optional<DimExpr> moe::negativeDim(const TensorType &t, const SymbolRanges &ranges) {
  for (auto &d : t.dims)
    if (auto b = d.bounds(ranges); b && b->first < 0)
      return d;
  return std::nullopt;
}

std::optional<std::string> moe::sizeOverflow(const TensorType &t, const SymbolRanges &ranges) {
  for (auto &d : t.dims)
    if (d.overflowed())
      return fmt::format("a dim of {} overflows 64-bit integers", t.str());
  DimExpr n = t.numElements();
  if (n.overflowed())
    return fmt::format("{} has more elements than 64-bit sizes can count", t.str());
  std::vector<std::string> syms;
  n.collectSymbols(syms);
  for (auto &s : syms)
    if (!ranges.count(s))
      return std::nullopt; // an undeclared symbol, reported on its own
  // 16 bytes per element bounds every element type's storage and the
  // run time's byte offsets.
  auto b = n.bounds(ranges);
  if (!b || b->second > std::numeric_limits<int64_t>::max() / 16)
    return fmt::format("{} may have more elements than 64-bit byte sizes can count (at its "
                       "symbols' upper bounds)", t.str());
  return std::nullopt;
}

std::optional<std::string> moe::undeclaredSymbol(const TensorType &t, const Function &f) {
  std::vector<std::string> syms;
  for (auto &d : t.dims)
    d.collectSymbols(syms);
  for (auto &s : syms)
    if (!f.lookupSymbol(s))
      return s;
  return std::nullopt;
}

bool moe::verifyFunction(const Function &f, DiagEngine &diag) {
  unsigned before = diag.getNumErrors();
  llvm::StringSet<> symNames;
  for (auto &s : f.symbols()) {
    if (!symNames.insert(s.name).second)
      diag.error(s.loc, fmt::format("symbol '{}' declared twice", s.name));
    if (s.lo < 0 || s.lo > s.hi)
      diag.error(s.loc, fmt::format("symbol '{}' has an empty or negative range [{}, {}]",
                                    s.name, s.lo, s.hi));
  }
  SymbolRanges ranges = f.symbolRanges();
  for (auto *a : f.getArguments()) {
    if (auto s = undeclaredSymbol(a->getType(), f))
      diag.error(a->getLoc(), fmt::format("argument %{} uses undeclared symbol '{}'",
                                          a->getName(), *s));
    else if (auto d = negativeDim(a->getType(), ranges))
      diag.error(a->getLoc(), fmt::format("argument %{} has type {} whose dim {} may be "
                                          "negative", a->getName(), a->getType().str(),
                                          d->str()));
    else if (auto m = sizeOverflow(a->getType(), ranges))
      diag.error(a->getLoc(), fmt::format("argument %{}: {}", a->getName(), *m));
    if (isQuantized(a->getType().elem) && !a->isParam())
      diag.error(a->getLoc(), fmt::format("argument %{} is block-quantised ({}) but not "
                                          "a {{param}}: quantised types are for weights only",
                                          a->getName(), elemTypeName(a->getType().elem).str()));
    if (isQuantized(a->getType().elem) &&
        (a->getType().rank() == 0 ||
         !a->getType().dims.back().isMultipleOf(blockElems(a->getType().elem))))
      diag.error(a->getLoc(), fmt::format("argument %{}: the innermost dim of a {} tensor "
                                          "must be a multiple of {}, got {}",
                                          a->getName(), elemTypeName(a->getType().elem).str(),
                                          blockElems(a->getType().elem), a->getType().str()));
  }
  if (auto m = checkDerivations(f))
    diag.error(f.getLoc(), *m);
  if (auto m = checkSpmd(f))
    diag.error(f.getLoc(), *m);
  for (auto &t : f.resultTypes())
    if (auto s = undeclaredSymbol(t, f))
      diag.error(f.getLoc(), fmt::format("result type {} uses undeclared symbol '{}'",
                                         t.str(), *s));
    else if (auto d = negativeDim(t, ranges))
      diag.error(f.getLoc(), fmt::format("result type {} has dim {}, which may be negative",
                                         t.str(), d->str()));
    else if (auto m = sizeOverflow(t, ranges))
      diag.error(f.getLoc(), fmt::format("result type: {}", *m));

  // Position of each defined value, to check def-before-use without
  // depending on anything but the body order the printer will emit.
  llvm::DenseMap<const Value *, int> defined;
  for (auto *a : f.getArguments())
    defined[a] = -1;
  llvm::DenseMap<const Operation *, int> position;
  int idx = 0;
  for (auto &op : f.getBody())
    position[&op] = idx++;
  idx = 0;
  bool sawReturn = false;
  for (auto &op : f.getBody()) {
    if (sawReturn)
      diag.opError(&op, "follows the function's return");
    bool operandsOk = true;
    std::vector<TensorType> types;
    for (unsigned i = 0; i < op.getNumOperands(); ++i) {
      Value *v = op.getOperand(i);
      if (!v) {
        diag.opError(&op, fmt::format("operand #{} is null", i));
        operandsOk = false;
        continue;
      }
      if (!defined.count(v)) {
        Operation *d = v->getDefiningOp();
        bool local = d ? position.count(d) : v == f.lookupArgument(v->getName());
        if (!local)
          diag.opError(&op, fmt::format("operand #{} is defined outside this function", i));
        else if (position[d] == position[&op])
          diag.opError(&op, fmt::format("uses its own result (a cycle)"));
        else
          diag.opError(&op, fmt::format("operand #{} (%{}) is used before its definition "
                                        "(the body is not in topological order or has a cycle)",
                                        i, v->getName()));
        operandsOk = false;
        continue;
      }
      types.push_back(v->getType());
    }
    if (op.is(OpKind::Return)) {
      sawReturn = true;
      if (operandsOk) {
        if (types.size() != f.resultTypes().size())
          diag.opError(&op, fmt::format("returns {} values, the function declares {}",
                                        types.size(), f.resultTypes().size()));
        else
          for (size_t i = 0; i < types.size(); ++i)
            if (types[i] != f.resultTypes()[i])
              diag.opError(&op, fmt::format("result #{} has type {}, the function declares {}",
                                            i, types[i].str(), f.resultTypes()[i].str()));
      }
    } else if (operandsOk) {
      const TensorType *written = op.getNumResults() ? &op.getResult()->getType() : nullptr;
      auto t = checkOp(op.getKind(), types, op.attrs(), ranges, written);
      if (!t)
        diag.opError(&op, llvm::toString(t.takeError()));
      else if (written && *t != *written)
        diag.opError(&op, fmt::format("result type {} does not match the inferred type {}",
                                      written->str(), t->str()));
      if (written) {
        if (auto s = undeclaredSymbol(*written, f))
          diag.opError(&op, fmt::format("result type uses undeclared symbol '{}'", *s));
        else if (auto m = sizeOverflow(*written, ranges))
          diag.opError(&op, *m);
      }
    }
    for (unsigned i = 0; i < op.getNumResults(); ++i)
      defined[op.getResult(i)] = idx;
    ++idx;
  }
  if (!sawReturn)
    diag.error(f.getLoc(), fmt::format("function @{} has no return", f.getName()));
  return diag.getNumErrors() == before;
}

/// Why `v` cannot be a variant of `f` (docs/IR.md): the same arguments
/// (names, types, attributes), results, symbols and function attributes but
/// `variants`, each symbol's range inside f's, and no variants of its own.
static std::optional<std::string> whyNotVariant(const Function &f, const Function &v) {
  if (v.attrs().has("variants"))
    return std::string("it has variants itself");
  if (v.getNumArguments() != f.getNumArguments() || v.resultTypes() != f.resultTypes())
    return std::string("its signature differs");
  for (unsigned k = 0; k < f.getNumArguments(); ++k) {
    const Value *a = f.getArgument(k), *b = v.getArgument(k);
    if (a->getName() != b->getName() || a->getType() != b->getType() ||
        !(a->argAttrs() == b->argAttrs()))
      return fmt::format("argument %{} differs", a->getName());
  }
  if (v.symbols().size() != f.symbols().size())
    return std::string("its symbols differ");
  for (auto &s : v.symbols()) {
    const SymbolDecl *mine = f.lookupSymbol(s.name);
    if (!mine)
      return fmt::format("symbol '{}' is not one of @{}'s", s.name, f.getName());
    if (s.lo < mine->lo || s.hi > mine->hi)
      return fmt::format("the range of '{}', [{}, {}], is not inside [{}, {}]", s.name, s.lo,
                         s.hi, mine->lo, mine->hi);
  }
  for (auto &[k, a] : f.attrs())
    if (k != "variants" && !(v.attrs().get(k) && *v.attrs().get(k) == a))
      return fmt::format("function attribute '{}' differs", k);
  if (v.attrs().size() != f.attrs().size() - 1)
    return std::string("its function attributes differ");
  return std::nullopt;
}

bool moe::verifyModule(const Module &m, DiagEngine &diag) {
  bool ok = true;
  llvm::StringSet<> names;
  for (auto &f : m.functions) {
    if (!names.insert(f->getName()).second) {
      diag.error(f->getLoc(), fmt::format("redefinition of function @{}", f->getName()));
      ok = false;
    }
    ok &= verifyFunction(*f, diag);
  }
  for (auto &f : m.functions) {
    const Attribute *vs = f->attrs().get("variants");
    if (!vs)
      continue;
    if (!vs->isList()) {
      diag.error(f->getLoc(), fmt::format("@{}: `variants` must be a list of function names",
                                          f->getName()));
      ok = false;
      continue;
    }
    for (auto &n : vs->getList()) {
      const Function *v = n.kind() == Attribute::Kind::String ? m.lookup(n.getString()) : nullptr;
      std::optional<std::string> why;
      if (!v || v == f.get())
        why = fmt::format("{} is not another function of the module", n.str());
      else
        why = whyNotVariant(*f, *v);
      if (why) {
        diag.error(f->getLoc(), fmt::format("@{}: variant {}: {}", f->getName(), n.str(), *why));
        ok = false;
      }
    }
  }
  return ok;
}
