//===- OpInfo.cpp - The op table, materialised ----------------------------===//
#include "ir/OpInfo.h"
#include "ir/IR.h"
#include "ir/ShapeRules.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSwitch.h"
#include <cstdlib>

using namespace moe;

static AttrSpec::Kind parseKind(llvm::StringRef k) {
  return llvm::StringSwitch<AttrSpec::Kind>(k)
      .Case("int", AttrSpec::Kind::Int)
      .Case("float", AttrSpec::Kind::Float)
      .Case("flag", AttrSpec::Kind::Flag)
      .Case("dim", AttrSpec::Kind::Dim)
      .Case("dims", AttrSpec::Kind::Dims)
      .Case("ints", AttrSpec::Kind::Ints)
      .Case("elem", AttrSpec::Kind::Elem)
      .Case("number", AttrSpec::Kind::Number);
}

/// Parses the compact spec strings of Ops.def ("axis:int, keepdim:flag").
static std::vector<AttrSpec> parseSpecs(llvm::StringRef text) {
  std::vector<AttrSpec> out;
  llvm::SmallVector<llvm::StringRef> parts;
  text.split(parts, ',', -1, false);
  for (auto p : parts) {
    p = p.trim();
    AttrSpec s;
    auto [name, rest] = p.split(':');
    s.name = name.trim().str();
    auto [kind, dflt] = rest.split('=');
    kind = kind.trim();
    if (kind.consume_back("?"))
      s.optional = true;
    s.kind = parseKind(kind);
    if (s.kind == AttrSpec::Kind::Flag)
      s.optional = true;
    if (!dflt.empty()) {
      s.optional = true;
      double d = std::strtod(dflt.str().c_str(), nullptr);
      s.dflt = s.kind == AttrSpec::Kind::Elem ? Attribute::getIdent(dflt.trim().str())
               : s.kind == AttrSpec::Kind::Int || s.kind == AttrSpec::Kind::Dim
                   ? Attribute::getInt((int64_t)d)
                   : Attribute::getFloat(d);
    }
    out.push_back(std::move(s));
  }
  return out;
}

static const std::vector<OpInfo> &table() {
  static const std::vector<OpInfo> t = [] {
    std::vector<OpInfo> v;
#define OP(E, N, MIN, MAX, NRES, TRAITS, QUANT, ATTRS, SHAPE, SUMMARY)         \
  v.push_back(OpInfo{OpKind::E, N, MIN, MAX, NRES, (uint32_t)(TRAITS), QUANT,   \
                     parseSpecs(ATTRS), shape_rules::SHAPE, SUMMARY});
#include "ir/Ops.def"
    return v;
  }();
  return t;
}

const OpInfo &moe::getOpInfo(OpKind k) { return table()[(size_t)k]; }

llvm::ArrayRef<OpInfo> moe::allOps() { return table(); }

const OpInfo *moe::lookupOp(llvm::StringRef name) {
  static const llvm::StringMap<const OpInfo *> byName = [] {
    llvm::StringMap<const OpInfo *> m;
    for (auto &i : table())
      m[i.name] = &i;
    return m;
  }();
  auto it = byName.find(name);
  return it == byName.end() ? nullptr : it->second;
}

const AttrSpec *OpInfo::findAttr(llvm::StringRef n) const {
  for (auto &a : attrs)
    if (a.name == n)
      return &a;
  return nullptr;
}

const Attribute *OpInfo::attrOrDefault(const AttrDict &d,
                                       llvm::StringRef n) const {
  if (auto *a = d.get(n))
    return a;
  auto *s = findAttr(n);
  return s && s->dflt ? &*s->dflt : nullptr;
}

llvm::StringRef moe::attrKindName(AttrSpec::Kind k) {
  switch (k) {
  case AttrSpec::Kind::Int: return "an integer";
  case AttrSpec::Kind::Float: return "a number";
  case AttrSpec::Kind::Flag: return "a flag";
  case AttrSpec::Kind::Dim: return "a dim";
  case AttrSpec::Kind::Dims: return "a list of dims";
  case AttrSpec::Kind::Ints: return "a list of integers";
  case AttrSpec::Kind::Elem: return "an element type";
  case AttrSpec::Kind::Number: return "a number or a list of numbers";
  }
  return "?";
}

std::optional<int64_t> moe::normalizeAxis(int64_t axis, int64_t rank) {
  if (axis < 0)
    axis += rank;
  if (axis < 0 || axis >= rank)
    return std::nullopt;
  return axis;
}

bool moe::isLinearIn(const Operation &op, unsigned i) {
  if (i == 0 && op.hasTrait(Trait::LinearIn0WithoutBias)) {
    const Attribute *bias = op.getAttr("bias");
    return !bias || bias->getNumber() == 0;
  }
  if (i == 0 && op.hasTrait(Trait::LinearIn0WithExactAct)) {
    const Attribute *act = op.getAttr("act");
    return !act || act->kind() != Attribute::Kind::Ident || act->getIdent() == "f32";
  }
  const OpInfo &info = op.getInfo();
  return (i == 0 && info.has(Trait::LinearIn0)) || (i == 1 && info.has(Trait::LinearIn1)) ||
         (i > 1 && info.has(Trait::LinearIn1) && info.maxOperands < 0);
}

bool moe::isSummandIn(const Operation &op, unsigned i) {
  return op.hasTrait(Trait::Additive) && (i == 0 || (i == 1 && op.getNumOperands() == 2));
}
