//===- Lexer.cpp - Tokens of the .moe text format -------------------------===//
#include "ir/Lexer.h"

#include <cctype>

using namespace moe;

static bool isNameChar(char c) {
  return std::isalnum((unsigned char)c) || c == '_' || c == '.' || c == '$';
}

const char *Lexer::lineEnd(const char *p) const {
  while (p < buf.end() && *p != '\n')
    ++p;
  return p;
}

Token Lexer::lexNumber(const char *start) {
  bool isFloat = false;
  while (cur < buf.end() && std::isdigit((unsigned char)*cur))
    ++cur;
  if (cur < buf.end() && *cur == '.' && cur + 1 <= buf.end()) {
    isFloat = true;
    ++cur;
    while (cur < buf.end() && std::isdigit((unsigned char)*cur))
      ++cur;
  }
  if (cur < buf.end() && (*cur == 'e' || *cur == 'E')) {
    const char *save = cur++;
    if (cur < buf.end() && (*cur == '+' || *cur == '-'))
      ++cur;
    if (cur < buf.end() && std::isdigit((unsigned char)*cur)) {
      isFloat = true;
      while (cur < buf.end() && std::isdigit((unsigned char)*cur))
        ++cur;
    } else {
      cur = save;
    }
  }
  return make(isFloat ? Token::Float : Token::Int, start);
}

Token Lexer::next() {
  // Skip whitespace and // comments.
  while (cur < buf.end()) {
    if (std::isspace((unsigned char)*cur)) {
      ++cur;
    } else if (*cur == '/' && cur + 1 < buf.end() && cur[1] == '/') {
      cur = lineEnd(cur);
    } else {
      break;
    }
  }
  const char *start = cur;
  if (cur >= buf.end())
    return Token{Token::Eof, llvm::StringRef(buf.end(), 0)};
  char c = *cur++;
  switch (c) {
  case '(': return make(Token::LParen, start);
  case ')': return make(Token::RParen, start);
  case '{': return make(Token::LBrace, start);
  case '}': return make(Token::RBrace, start);
  case '[': return make(Token::LBracket, start);
  case ']': return make(Token::RBracket, start);
  case '<': return make(Token::Less, start);
  case '>': return make(Token::Greater, start);
  case ',': return make(Token::Comma, start);
  case ':': return make(Token::Colon, start);
  case '=': return make(Token::Equal, start);
  case '+': return make(Token::Plus, start);
  case '*': return make(Token::Star, start);
  case '-':
    if (cur < buf.end() && *cur == '>') {
      ++cur;
      return make(Token::Arrow, start);
    }
    return make(Token::Minus, start);
  case '%':
  case '@': {
    while (cur < buf.end() && (isNameChar(*cur) || *cur == '-'))
      ++cur;
    Token t{c == '%' ? Token::ValueName : Token::AtName, llvm::StringRef(start, cur - start)};
    if (t.text.size() == 1)
      return Token{Token::Error, llvm::StringRef(start, 1)};
    return t;
  }
  case '"': {
    while (cur < buf.end() && *cur != '"' && *cur != '\n') {
      if (*cur == '\\' && cur + 1 < buf.end())
        ++cur;
      ++cur;
    }
    if (cur >= buf.end() || *cur != '"')
      return Token{Token::Error, llvm::StringRef(start, 1)};
    ++cur;
    return Token{Token::String, llvm::StringRef(start + 1, cur - start - 2)};
  }
  default:
    break;
  }
  if (std::isdigit((unsigned char)c))
    return lexNumber(start);
  if (std::isalpha((unsigned char)c) || c == '_') {
    while (cur < buf.end() && isNameChar(*cur))
      ++cur;
    return make(Token::Ident, start);
  }
  return Token{Token::Error, llvm::StringRef(start, 1)};
}
