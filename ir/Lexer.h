//===- Lexer.h - Tokens of the .moe text format -----------------*- C++ -*-===//
#pragma once

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/SMLoc.h"

namespace moe {

struct Token {
  enum Kind {
    Eof, Error,
    Ident,      ///< bare name: op names, keywords, element types, symbols
    ValueName,  ///< %name (text includes the %)
    AtName,     ///< @name (text includes the @)
    Int, Float, String,
    LParen, RParen, LBrace, RBrace, LBracket, RBracket, Less, Greater,
    Comma, Colon, Equal, Plus, Minus, Star, Arrow,
  };
  Kind kind = Eof;
  llvm::StringRef text; ///< spelling (for strings: without quotes, unescaped later)
  llvm::SMLoc loc() const { return llvm::SMLoc::getFromPointer(text.data()); }
  bool is(Kind k) const { return kind == k; }
  bool isIdent(llvm::StringRef s) const { return kind == Ident && text == s; }
};

class Lexer {
public:
  explicit Lexer(llvm::StringRef buffer) : buf(buffer), cur(buffer.begin()) {}
  Token next();
  /// Start of the line after the one containing `p` (for error recovery).
  const char *lineEnd(const char *p) const;
  void resetTo(const char *p) { cur = p; }
  const char *position() const { return cur; }
  llvm::StringRef buffer() const { return buf; }

private:
  Token make(Token::Kind k, const char *start) {
    return Token{k, llvm::StringRef(start, cur - start)};
  }
  Token lexNumber(const char *start);
  llvm::StringRef buf;
  const char *cur;
};

} // namespace moe
