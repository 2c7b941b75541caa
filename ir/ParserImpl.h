//===- ParserImpl.h - The parser's class, shared by its files --*- C++ -*-===//
//
// Private to ir/: the recursive-descent parser of Parser.cpp (functions,
// ops) and ParseValues.cpp (dims, types, attribute values).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/Diagnostics.h"
#include "ir/IR.h"
#include "ir/Lexer.h"

#include "fmt/format.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"

namespace moe::detail {

class Parser {
public:
  Parser(llvm::StringRef buf, DiagEngine &diag) : lex(buf), diag(diag) { consume(); }

  std::unique_ptr<Module> parseModule();

private:
  // Token handling.
  void consume() { tok = lex.next(); }
  bool consumeIf(Token::Kind k) {
    if (!tok.is(k))
      return false;
    consume();
    return true;
  }
  /// Reports at the current token; always returns true ("failed").
  bool error(const std::string &msg) { return errorAt(tok.loc(), msg); }
  bool errorAt(llvm::SMLoc loc, const std::string &msg) {
    diag.error(loc, msg);
    return true;
  }
  bool expect(Token::Kind k, llvm::StringRef what) {
    if (consumeIf(k))
      return false;
    return error(fmt::format("expected {}, found '{}'", what.str(), describe(tok)));
  }
  static std::string describe(const Token &t) {
    return t.is(Token::Eof) ? "end of file" : t.text.str();
  }

  // Grammar.
  std::unique_ptr<Function> parseFunction();
  bool parseType(TensorType &t);
  bool parseDim(DimExpr &d);
  bool parseDimTerm(DimExpr &d);
  bool parseDimFactor(DimExpr &d);
  bool parseAttrDict(AttrDict &d);
  bool parseAttrValue(Attribute &a);
  bool parseInteger(int64_t &v);
  /// Parses one op into `f`; on error skips to the end of the line.
  void parseOp(Function &f);
  void skipLine(const char *from);
  bool isSymbol(llvm::StringRef n) const { return declaredSymbols.count(n); }

  /// Bounds the recursion of nested dims and attribute lists, as MLIR's
  /// parser does, so a deeply nested input is an error, not a stack overflow.
  static constexpr unsigned kMaxNesting = 256;
  unsigned nesting = 0;
  struct NestingGuard {
    Parser &p;
    explicit NestingGuard(Parser &p) : p(p) { ++p.nesting; }
    ~NestingGuard() { --p.nesting; }
  };
  /// Enters one more level; true (after an error) when that is too deep.
  bool tooDeep() {
    if (nesting <= kMaxNesting)
      return false;
    return error(fmt::format("nesting is deeper than {} levels", kMaxNesting));
  }

  Lexer lex;
  DiagEngine &diag;
  Token tok;
  /// Per-function state.
  llvm::StringMap<Value *> values;
  llvm::StringMap<llvm::SMLoc> poisoned;
  llvm::StringSet<> declaredSymbols;
  SymbolRanges ranges;
  /// Uses of not-yet-defined names: reported at the end of the function as
  /// "used before definition" if the name shows up later, else "undefined".
  std::vector<std::pair<std::string, llvm::SMLoc>> forwardRefs;
};

} // namespace moe::detail
