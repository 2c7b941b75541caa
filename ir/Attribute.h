//===- Attribute.h - Operation and argument attributes ----------*- C++ -*-===//
//
// Attribute values of the text format: integers, floats, strings, bare names
// (`to = f16`), flags (a bare `keepdim` means true), symbolic dims, lists and
// types. An integer constant dim is stored as Int, so `[7, 64]` and `[T, 64]`
// are both lists the shape helpers read as dims.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/Type.h"
#include <memory>
#include <variant>

namespace moe {

class Attribute {
public:
  enum class Kind { Int, Float, String, Bool, Ident, Dim, List, Type };

  Attribute() : v(false) {}
  static Attribute getInt(int64_t i) { return Attribute(i); }
  static Attribute getFloat(double d) { return Attribute(d); }
  static Attribute getBool(bool b) { return Attribute(b); }
  static Attribute getString(std::string s) { return Attribute(Str{std::move(s)}); }
  static Attribute getIdent(std::string s) { return Attribute(Ident{std::move(s)}); }
  /// A constant dim becomes Int.
  static Attribute getDim(const DimExpr &d);
  static Attribute getList(std::vector<Attribute> l) { return Attribute(std::move(l)); }
  static Attribute getDims(llvm::ArrayRef<DimExpr> dims);
  static Attribute getInts(llvm::ArrayRef<int64_t> ints);
  static Attribute getType(TensorType t) { return Attribute(std::move(t)); }

  Kind kind() const { return (Kind)v.index(); }
  bool isInt() const { return kind() == Kind::Int; }
  bool isFloat() const { return kind() == Kind::Float; }
  bool isNumber() const { return isInt() || isFloat(); }
  bool isList() const { return kind() == Kind::List; }
  bool isDimLike() const { return kind() == Kind::Int || kind() == Kind::Dim; }

  int64_t getInt() const { return std::get<int64_t>(v); }
  /// Float value of an Int or Float attribute.
  double getNumber() const {
    return isInt() ? (double)getInt() : std::get<double>(v);
  }
  bool getBool() const { return std::get<bool>(v); }
  const std::string &getString() const { return std::get<Str>(v).s; }
  const std::string &getIdent() const { return std::get<Ident>(v).s; }
  /// Dim value of an Int or Dim attribute.
  DimExpr getDim() const {
    return isInt() ? DimExpr(getInt()) : std::get<DimExpr>(v);
  }
  const std::vector<Attribute> &getList() const {
    return std::get<std::vector<Attribute>>(v);
  }
  const TensorType &getType() const { return std::get<TensorType>(v); }

  /// A list of Int/Dim read as dims; nullopt if some element is not dim-like.
  std::optional<Shape> asDims() const;
  /// A list of Int; nullopt otherwise.
  std::optional<std::vector<int64_t>> asInts() const;

  bool operator==(const Attribute &o) const { return v == o.v; }
  bool operator!=(const Attribute &o) const { return !(v == o.v); }

  /// Text form as printed in the IR (`1.5`, `[T, 8, 1]`, `"s"`, `f16`).
  std::string str() const;

private:
  struct Str {
    std::string s;
    bool operator==(const Str &o) const { return s == o.s; }
  };
  struct Ident {
    std::string s;
    bool operator==(const Ident &o) const { return s == o.s; }
  };
  using Storage = std::variant<int64_t, double, Str, bool, Ident, DimExpr,
                               std::vector<Attribute>, TensorType>;
  template <typename T> explicit Attribute(T x) : v(std::move(x)) {}
  Storage v;
};

/// Ordered name -> attribute map (kept in insertion order; small).
class AttrDict {
public:
  const Attribute *get(llvm::StringRef name) const;
  bool has(llvm::StringRef name) const { return get(name) != nullptr; }
  void set(llvm::StringRef name, Attribute a);
  bool erase(llvm::StringRef name);
  bool getFlag(llvm::StringRef name) const {
    auto *a = get(name);
    return a && a->kind() == Attribute::Kind::Bool && a->getBool();
  }
  int64_t getInt(llvm::StringRef name, int64_t dflt) const {
    auto *a = get(name);
    return a && a->isInt() ? a->getInt() : dflt;
  }
  double getNumber(llvm::StringRef name, double dflt) const {
    auto *a = get(name);
    return a && a->isNumber() ? a->getNumber() : dflt;
  }
  bool empty() const { return entries.empty(); }
  size_t size() const { return entries.size(); }
  auto begin() const { return entries.begin(); }
  auto end() const { return entries.end(); }
  bool operator==(const AttrDict &o) const { return entries == o.entries; }
  /// ` {a = 1, flag}` or "" when empty (with the leading space).
  std::string str() const;

private:
  std::vector<std::pair<std::string, Attribute>> entries;
};

/// Shortest decimal text that reads back as the same double, always with a
/// '.' or an exponent so it parses as a float (`7.0`, `6.1e-5`).
std::string formatFloat(double d);

} // namespace moe
