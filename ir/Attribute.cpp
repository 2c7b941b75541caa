//===- Attribute.cpp - Operation and argument attributes ------------------===//
#include "ir/Attribute.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <algorithm>

using namespace moe;

Attribute Attribute::getDim(const DimExpr &d) {
  if (auto c = d.getConstant())
    return getInt(*c);
  return Attribute(d);
}

Attribute Attribute::getDims(llvm::ArrayRef<DimExpr> dims) {
  std::vector<Attribute> l;
  for (auto &d : dims)
    l.push_back(getDim(d));
  return getList(std::move(l));
}

Attribute Attribute::getInts(llvm::ArrayRef<int64_t> ints) {
  std::vector<Attribute> l;
  for (auto i : ints)
    l.push_back(getInt(i));
  return getList(std::move(l));
}

std::optional<Shape> Attribute::asDims() const {
  if (!isList())
    return std::nullopt;
  Shape s;
  for (auto &a : getList()) {
    if (!a.isDimLike())
      return std::nullopt;
    s.push_back(a.getDim());
  }
  return s;
}

std::optional<std::vector<int64_t>> Attribute::asInts() const {
  if (!isList())
    return std::nullopt;
  std::vector<int64_t> r;
  for (auto &a : getList()) {
    if (!a.isInt())
      return std::nullopt;
    r.push_back(a.getInt());
  }
  return r;
}

std::string moe::formatFloat(double d) {
  if (std::isnan(d))
    return "nan";
  if (std::isinf(d))
    return d < 0 ? "-inf" : "inf";
  // The fewest significant digits that read back as the same double.
  char buf[64];
  int prec = 1;
  for (; prec < 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, d);
    if (std::strtod(buf, nullptr) == d)
      break;
  }
  std::snprintf(buf, sizeof buf, "%.*e", prec - 1, d);
  std::string sci = buf;
  auto e = sci.find('e');
  std::string mant = sci.substr(0, e);
  int exp10 = std::atoi(sci.c_str() + e + 1);
  // Plain notation for moderate magnitudes (100.0, 1.702), scientific with a
  // minimal exponent otherwise (6.1e-5, 1.0e20).
  if (exp10 >= -4 && exp10 < 16) {
    std::snprintf(buf, sizeof buf, "%.*f", std::max(0, prec - 1 - exp10), d);
    std::string s = buf;
    return s.find('.') == std::string::npos ? s + ".0" : s;
  }
  if (mant.find('.') == std::string::npos)
    mant += ".0";
  return mant + "e" + std::to_string(exp10);
}

static std::string quote(const std::string &s) {
  std::string r = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      r += '\\';
    if (c == '\n' || c == '\t') {
      r += c == '\n' ? "\\n" : "\\t";
      continue;
    }
    r += c;
  }
  return r + "\"";
}

std::string Attribute::str() const {
  switch (kind()) {
  case Kind::Int:
    return std::to_string(getInt());
  case Kind::Float:
    return formatFloat(std::get<double>(v));
  case Kind::String:
    return quote(getString());
  case Kind::Bool:
    return getBool() ? "true" : "false";
  case Kind::Ident:
    return getIdent();
  case Kind::Dim:
    return std::get<DimExpr>(v).str();
  case Kind::List: {
    std::string s = "[";
    for (auto &a : getList())
      s += (s.size() > 1 ? ", " : "") + a.str();
    return s + "]";
  }
  case Kind::Type:
    return getType().str();
  }
  return "?";
}

const Attribute *AttrDict::get(llvm::StringRef name) const {
  for (auto &[n, a] : entries)
    if (n == name)
      return &a;
  return nullptr;
}

void AttrDict::set(llvm::StringRef name, Attribute a) {
  for (auto &[n, old] : entries)
    if (n == name) {
      old = std::move(a);
      return;
    }
  entries.emplace_back(name.str(), std::move(a));
}

bool AttrDict::erase(llvm::StringRef name) {
  for (auto it = entries.begin(); it != entries.end(); ++it)
    if (it->first == name) {
      entries.erase(it);
      return true;
    }
  return false;
}

std::string AttrDict::str() const {
  if (entries.empty())
    return "";
  std::string s = " {";
  bool first = true;
  for (auto &[n, a] : entries) {
    s += first ? "" : ", ";
    first = false;
    if (a.kind() == Attribute::Kind::Bool && a.getBool())
      s += n;
    else
      s += n + " = " + a.str();
  }
  return s + "}";
}
