//===- ParseValues.cpp - Parsing dims, types and attribute values ---------===//
#include "ir/ParserImpl.h"

#include <cmath>
#include <cstdlib>

using namespace moe;
using namespace moe::detail;

bool Parser::parseInteger(int64_t &v) {
  bool neg = consumeIf(Token::Minus);
  if (!tok.is(Token::Int))
    return error(fmt::format("expected an integer, found '{}'", describe(tok)));
  if (tok.text.getAsInteger(10, v))
    return error(fmt::format("integer '{}' is too large", tok.text.str()));
  if (neg)
    v = -v;
  consume();
  return false;
}

// dim := term (('+' | '-') term)*;  term := factor ('*' factor)*
// factor := INT | SYMBOL | '(' dim ')' | '-' factor
bool Parser::parseDim(DimExpr &d) {
  llvm::SMLoc start = tok.loc();
  if (parseDimTerm(d))
    return true;
  while (tok.is(Token::Plus) || tok.is(Token::Minus)) {
    bool minus = tok.is(Token::Minus);
    consume();
    DimExpr r;
    if (parseDimTerm(r))
      return true;
    d = minus ? d - r : d + r;
  }
  if (d.overflowed())
    return errorAt(start, "dim expression overflows 64-bit integers");
  return false;
}

bool Parser::parseDimTerm(DimExpr &d) {
  if (parseDimFactor(d))
    return true;
  while (consumeIf(Token::Star)) {
    DimExpr r;
    if (parseDimFactor(r))
      return true;
    d = d * r;
  }
  return false;
}

bool Parser::parseDimFactor(DimExpr &d) {
  NestingGuard guard(*this);
  if (tooDeep())
    return true;
  if (consumeIf(Token::Minus)) {
    if (parseDimFactor(d))
      return true;
    d = -d;
    return false;
  }
  if (tok.is(Token::Int)) {
    int64_t v;
    if (tok.text.getAsInteger(10, v))
      return error(fmt::format("integer '{}' is too large", tok.text.str()));
    consume();
    d = DimExpr(v);
    return false;
  }
  if (tok.is(Token::Ident) && tok.text != "x" && !parseElemType(tok.text)) {
    d = DimExpr::symbol(tok.text);
    consume();
    return false;
  }
  if (consumeIf(Token::LParen)) {
    if (parseDim(d))
      return true;
    return expect(Token::RParen, "')'");
  }
  return error(fmt::format("expected a dim (an integer or a symbol expression), found '{}'",
                           describe(tok)));
}

// type := 'tensor' '<' (dim 'x')* ELEM '>'
bool Parser::parseType(TensorType &t) {
  if (!tok.isIdent("tensor"))
    return error(fmt::format("expected a type 'tensor<...>', found '{}'", describe(tok)));
  consume();
  if (expect(Token::Less, "'<' after 'tensor'"))
    return true;
  t.dims.clear();
  while (true) {
    if (tok.is(Token::Ident)) {
      if (auto e = parseElemType(tok.text)) {
        t.elem = *e;
        consume();
        return expect(Token::Greater, "'>' to close the tensor type");
      }
      // A name right before '>' is meant as the element type, not a dim.
      const char *save = lex.position();
      Token name = tok;
      consume();
      bool closes = tok.is(Token::Greater);
      lex.resetTo(save);
      tok = name;
      if (closes && name.text != "x")
        return error(fmt::format("unknown element type '{}' (expected one of f32, f16, "
                                 "bf16, i32, q8_0, q4_0, mxfp4)", name.text.str()));
    }
    llvm::SMLoc dimLoc = tok.loc();
    DimExpr d;
    if (parseDim(d))
      return true;
    if (!tok.isIdent("x")) {
      if (tok.is(Token::Ident) && !parseElemType(tok.text) && !tok.text.starts_with("x"))
        return error(fmt::format("unknown element type '{}' (expected one of f32, f16, "
                                 "bf16, i32, q8_0, q4_0, mxfp4)", tok.text.str()));
      return error(fmt::format("expected 'x' after dim {}, found '{}'", d.str(), describe(tok)));
    }
    (void)dimLoc;
    consume();
    t.dims.push_back(d);
  }
}

bool Parser::parseAttrValue(Attribute &a) {
  NestingGuard guard(*this);
  if (tooDeep())
    return true;
  if (tok.is(Token::LBracket)) {
    consume();
    std::vector<Attribute> list;
    if (!tok.is(Token::RBracket)) {
      do {
        Attribute e;
        if (parseAttrValue(e))
          return true;
        list.push_back(std::move(e));
      } while (consumeIf(Token::Comma));
    }
    if (expect(Token::RBracket, "']' to close the list"))
      return true;
    a = Attribute::getList(std::move(list));
    return false;
  }
  if (tok.is(Token::String)) {
    std::string s;
    llvm::StringRef t = tok.text;
    for (size_t i = 0; i < t.size(); ++i) {
      if (t[i] != '\\' || i + 1 >= t.size()) {
        s += t[i];
        continue;
      }
      char e = t[++i];
      if (e == 'n')
        s += '\n';
      else if (e == 't')
        s += '\t';
      else if (e == '"' || e == '\\')
        s += e;
      else
        return errorAt(llvm::SMLoc::getFromPointer(t.data() + i - 1),
                       fmt::format("unknown escape '\\{}' in a string (use \\n, \\t, "
                                   "\\\" or \\\\)", e));
    }
    a = Attribute::getString(s);
    consume();
    return false;
  }
  if (tok.isIdent("tensor")) {
    TensorType t;
    if (parseType(t))
      return true;
    a = Attribute::getType(t);
    return false;
  }
  // Numbers: a float, or an integer / symbolic dim expression.
  bool neg = false;
  const char *save = lex.position();
  Token saveTok = tok;
  if (tok.is(Token::Minus)) {
    neg = true;
    consume();
  }
  if (tok.is(Token::Float) || tok.isIdent("inf") || tok.isIdent("nan")) {
    double d = tok.is(Token::Float) ? std::strtod(tok.text.str().c_str(), nullptr)
               : tok.text == "inf" ? HUGE_VAL
                                   : NAN;
    a = Attribute::getFloat(neg ? -d : d);
    consume();
    return false;
  }
  // A bare name that is not a declared symbol is an identifier (`to = f16`),
  // unless arithmetic follows: then it is a dim with an undeclared symbol.
  if (!neg && tok.is(Token::Ident) && !isSymbol(tok.text)) {
    Token name = tok;
    consume();
    if (!tok.is(Token::Plus) && !tok.is(Token::Minus) && !tok.is(Token::Star)) {
      if (name.text == "true" || name.text == "false")
        a = Attribute::getBool(name.text == "true");
      else
        a = Attribute::getIdent(name.text.str());
      return false;
    }
  }
  lex.resetTo(save);
  tok = saveTok;
  llvm::SMLoc loc = tok.loc();
  DimExpr d;
  if (parseDim(d))
    return true;
  std::vector<std::string> syms;
  d.collectSymbols(syms);
  for (auto &s : syms)
    if (!isSymbol(s))
      return errorAt(loc, fmt::format("use of undeclared symbol '{}'", s));
  a = Attribute::getDim(d);
  return false;
}

// attrs := '{' attr (',' attr)* '}';  attr := NAME ('=' value)?
bool Parser::parseAttrDict(AttrDict &d) {
  if (expect(Token::LBrace, "'{'"))
    return true;
  if (consumeIf(Token::RBrace))
    return false;
  do {
    if (!tok.is(Token::Ident))
      return error(fmt::format("expected an attribute name, found '{}'", describe(tok)));
    std::string name = tok.text.str();
    llvm::SMLoc loc = tok.loc();
    consume();
    if (d.has(name))
      return errorAt(loc, fmt::format("attribute '{}' given twice", name));
    Attribute a = Attribute::getBool(true);
    if (consumeIf(Token::Equal) && parseAttrValue(a))
      return true;
    d.set(name, std::move(a));
  } while (consumeIf(Token::Comma));
  return expect(Token::RBrace, "'}' or ',' in the attribute list");
}

