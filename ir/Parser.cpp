//===- Parser.cpp - Parsing the .moe text format --------------------------===//
//
// A recursive-descent parser over the Lexer's tokens. Result types come from
// the op table (checkOp); a written type must equal the inferred one. Symbols
// used in the signature are checked once the `where` clause has been read.
//
//===----------------------------------------------------------------------===//
#include "ir/Parser.h"
#include "ir/Error.h"
#include "ir/ParserImpl.h"
#include "ir/Verifier.h"

#include "fmt/format.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/MemoryBuffer.h"
#include <cstdlib>

using namespace moe;
using namespace moe::detail;

void Parser::skipLine(const char *from) {
  // Re-lex the broken op's line from its start and resume at the next line;
  // a '}' on it that is not closing a '{' of the line closes the body and
  // is kept.
  const char *end = lex.lineEnd(from);
  lex.resetTo(from);
  int depth = 0;
  for (consume(); !tok.is(Token::Eof) && tok.text.data() <= end; consume()) {
    if (tok.is(Token::LBrace))
      ++depth;
    else if (tok.is(Token::RBrace) && depth-- == 0)
      return;
  }
}

void Parser::parseOp(Function &f) {
  const char *lineStart = tok.text.data();
  std::vector<std::pair<std::string, llvm::SMLoc>> resultNames;
  auto fail = [&] {
    for (auto &[n, l] : resultNames)
      poisoned[n] = l;
    skipLine(lineStart);
  };
  if (tok.is(Token::ValueName)) {
    do {
      if (!tok.is(Token::ValueName)) {
        error(fmt::format("expected a result name, found '{}'", describe(tok)));
        return fail();
      }
      resultNames.push_back({tok.text.drop_front().str(), tok.loc()});
      consume();
    } while (consumeIf(Token::Comma));
    if (expect(Token::Equal, "'=' after the result names"))
      return fail();
  }
  if (!tok.is(Token::Ident)) {
    error(fmt::format("expected an operation name, found '{}'", describe(tok)));
    return fail();
  }
  llvm::SMLoc opLoc = tok.loc();
  const OpInfo *info = lookupOp(tok.text);
  if (!info) {
    errorAt(opLoc, fmt::format("unknown operation '{}'", tok.text.str()));
    return fail();
  }
  consume();
  // Operands.
  std::vector<Value *> operands;
  bool operandsOk = true;
  if (tok.is(Token::ValueName)) {
    do {
      if (!tok.is(Token::ValueName)) {
        error(fmt::format("expected an operand, found '{}'", describe(tok)));
        return fail();
      }
      std::string n = tok.text.drop_front().str();
      auto it = values.find(n);
      if (it != values.end()) {
        operands.push_back(it->second);
      } else {
        if (!poisoned.count(n))
          forwardRefs.push_back({n, tok.loc()});
        operandsOk = false;
      }
      consume();
    } while (consumeIf(Token::Comma));
  }
  AttrDict attrs;
  if (tok.is(Token::LBrace) && parseAttrDict(attrs))
    return fail();
  std::vector<TensorType> written;
  llvm::SMLoc typeLoc;
  if (consumeIf(Token::Colon)) {
    typeLoc = tok.loc();
    do {
      TensorType t;
      if (parseType(t))
        return fail();
      if (auto s = undeclaredSymbol(t, f)) {
        errorAt(typeLoc, fmt::format("use of undeclared symbol '{}'", *s));
        return fail();
      }
      written.push_back(std::move(t));
    } while (consumeIf(Token::Comma));
  }
  if (resultNames.size() != info->numResults) {
    errorAt(opLoc, fmt::format("'{}' op has {} result{}, {} named", info->name.str(),
                               info->numResults, info->numResults == 1 ? "" : "s",
                               resultNames.size()));
    return fail();
  }
  if (!written.empty() && written.size() != info->numResults) {
    errorAt(typeLoc, fmt::format("'{}' op has {} result{}, {} types written",
                                 info->name.str(), info->numResults,
                                 info->numResults == 1 ? "" : "s", written.size()));
    return fail();
  }
  if (!operandsOk)
    return fail();
  TensorType type;
  if (info->numResults) {
    std::vector<TensorType> types;
    for (auto *v : operands)
      types.push_back(v->getType());
    auto t = checkOp(info->kind, types, attrs, ranges, written.empty() ? nullptr : &written[0]);
    if (!t) {
      errorAt(opLoc, fmt::format("'{}' op {}", info->name.str(), llvm::toString(t.takeError())));
      return fail();
    }
    if (!written.empty() && written[0] != *t) {
      errorAt(typeLoc, fmt::format("'{}' op result type {} does not match the inferred type {}",
                                   info->name.str(), written[0].str(), t->str()));
      return fail();
    }
    type = *t;
  } else if (!attrs.empty()) {
    errorAt(opLoc, fmt::format("'{}' op takes no attributes", info->name.str()));
    return fail();
  }
  for (auto &[n, l] : resultNames) {
    if (values.count(n) || poisoned.count(n)) {
      errorAt(l, fmt::format("redefinition of value %{}", n));
      return fail();
    }
  }
  std::vector<TensorType> resultTypes;
  if (info->numResults)
    resultTypes.push_back(type);
  auto op = Operation::create(info->kind, operands, std::move(attrs), resultTypes, opLoc);
  for (unsigned i = 0; i < resultNames.size(); ++i) {
    op->getResult(i)->setName(resultNames[i].first);
    op->getResult(i)->setLoc(resultNames[i].second);
    values[resultNames[i].first] = op->getResult(i);
  }
  f.push_back(std::move(op));
}

// func := 'func' '@'NAME '(' args ')' '->' types where? attributes? '{' op* '}'
std::unique_ptr<Function> Parser::parseFunction() {
  values.clear();
  poisoned.clear();
  declaredSymbols.clear();
  ranges.clear();
  forwardRefs.clear();
  llvm::SMLoc funcLoc = tok.loc();
  consume(); // 'func'
  if (!tok.is(Token::AtName)) {
    error(fmt::format("expected a function name '@name', found '{}'", describe(tok)));
    return nullptr;
  }
  auto f = std::make_unique<Function>(tok.text.drop_front().str());
  f->setLoc(funcLoc);
  consume();
  if (expect(Token::LParen, "'(' to start the argument list"))
    return nullptr;
  std::vector<std::pair<TensorType, llvm::SMLoc>> argTypeLocs;
  if (!tok.is(Token::RParen)) {
    do {
      if (!tok.is(Token::ValueName)) {
        error(fmt::format("expected an argument '%name', found '{}'", describe(tok)));
        return nullptr;
      }
      std::string n = tok.text.drop_front().str();
      llvm::SMLoc loc = tok.loc();
      consume();
      if (expect(Token::Colon, "':' after the argument name"))
        return nullptr;
      llvm::SMLoc typeLoc = tok.loc();
      TensorType t;
      if (parseType(t))
        return nullptr;
      AttrDict attrs;
      if (tok.is(Token::LBrace) && parseAttrDict(attrs))
        return nullptr;
      if (values.count(n)) {
        errorAt(loc, fmt::format("redefinition of argument %{}", n));
        return nullptr;
      }
      Value *a = f->addArgument(t, n, std::move(attrs));
      a->setLoc(loc);
      values[n] = a;
      argTypeLocs.push_back({t, typeLoc});
    } while (consumeIf(Token::Comma));
  }
  if (expect(Token::RParen, "')' or ',' in the argument list"))
    return nullptr;
  if (expect(Token::Arrow, "'->' and the result types"))
    return nullptr;
  bool paren = consumeIf(Token::LParen);
  std::vector<llvm::SMLoc> resultLocs;
  do {
    resultLocs.push_back(tok.loc());
    TensorType t;
    if (parseType(t))
      return nullptr;
    f->resultTypes().push_back(t);
  } while (consumeIf(Token::Comma));
  if (paren && expect(Token::RParen, "')' after the result types"))
    return nullptr;
  if (tok.isIdent("where")) {
    consume();
    do {
      if (!tok.is(Token::Ident) || tok.text == "x" || parseElemType(tok.text)) {
        error(fmt::format("expected a symbol name, found '{}'", describe(tok)));
        return nullptr;
      }
      SymbolDecl s{tok.text.str(), 0, 0, tok.loc()};
      consume();
      if (!tok.isIdent("in")) {
        error(fmt::format("expected 'in' after symbol '{}'", s.name));
        return nullptr;
      }
      consume();
      if (expect(Token::LBracket, "'[' to start the symbol's range") ||
          parseInteger(s.lo) || expect(Token::Comma, "',' in the range") ||
          parseInteger(s.hi) || expect(Token::RBracket, "']' to close the range"))
        return nullptr;
      if (declaredSymbols.count(s.name)) {
        errorAt(s.loc, fmt::format("symbol '{}' declared twice", s.name));
        return nullptr;
      }
      if (s.lo < 0 || s.lo > s.hi) {
        errorAt(s.loc, fmt::format("symbol '{}' has an empty or negative range [{}, {}]",
                                   s.name, s.lo, s.hi));
        return nullptr;
      }
      declaredSymbols.insert(s.name);
      ranges[s.name] = SymbolRange{s.lo, s.hi};
      f->symbols().push_back(s);
    } while (consumeIf(Token::Comma));
  }
  if (tok.isIdent("attributes")) {
    consume();
    if (parseAttrDict(f->attrs()))
      return nullptr;
  }
  bool sigOk = true;
  for (auto &[t, loc] : argTypeLocs)
    if (auto s = undeclaredSymbol(t, *f))
      sigOk = !errorAt(loc, fmt::format("use of undeclared symbol '{}' (declare it with "
                                        "'where {} in [lo, hi]')", *s, *s));
    else if (auto d = negativeDim(t, ranges))
      sigOk = !errorAt(loc, fmt::format("dim {} of {} may be negative", d->str(), t.str()));
  for (size_t i = 0; i < f->resultTypes().size(); ++i)
    if (auto s = undeclaredSymbol(f->resultTypes()[i], *f))
      sigOk = !errorAt(resultLocs[i], fmt::format("use of undeclared symbol '{}'", *s));
    else if (auto d = negativeDim(f->resultTypes()[i], ranges))
      sigOk = !errorAt(resultLocs[i], fmt::format("dim {} of {} may be negative", d->str(),
                                                  f->resultTypes()[i].str()));
  if (expect(Token::LBrace, "'{' to start the function body"))
    return nullptr;
  unsigned errorsBefore = diag.getNumErrors();
  while (!tok.is(Token::RBrace) && !tok.is(Token::Eof) && !tok.isIdent("func"))
    parseOp(*f);
  if (expect(Token::RBrace, "'}' to close the function body"))
    return nullptr;
  for (auto &[n, loc] : forwardRefs) {
    if (values.count(n) || poisoned.count(n))
      errorAt(loc, fmt::format("value %{} is used before its definition", n));
    else
      errorAt(loc, fmt::format("use of undefined value %{}", n));
  }
  if (!sigOk || diag.getNumErrors() != errorsBefore)
    return nullptr;
  Operation *ret = f->getReturn();
  // `return` must be last, and there must be exactly one (getReturn() only
  // looks at the last op: check the others first).
  for (auto &op : f->getBody())
    if (op.is(OpKind::Return) && &op != ret) {
      errorAt(op.getLoc(), "'return' must be the last operation of the function");
      return nullptr;
    }
  if (!ret) {
    errorAt(funcLoc, fmt::format("function @{} has no 'return'", f->getName()));
    return nullptr;
  }
  if (ret->getNumOperands() != f->resultTypes().size()) {
    errorAt(ret->getLoc(), fmt::format("'return' op returns {} value{}, the function "
                                       "declares {}", ret->getNumOperands(),
                                       ret->getNumOperands() == 1 ? "" : "s",
                                       f->resultTypes().size()));
    return nullptr;
  }
  for (unsigned i = 0; i < ret->getNumOperands(); ++i)
    if (ret->getOperand(i)->getType() != f->resultTypes()[i]) {
      errorAt(ret->getLoc(),
              fmt::format("'return' op result #{} has type {}, the function declares {}", i,
                          ret->getOperand(i)->getType().str(), f->resultTypes()[i].str()));
      return nullptr;
    }
  for (auto *a : f->getArguments()) {
    auto &t = a->getType();
    if (isQuantized(t.elem) && !a->isParam()) {
      errorAt(a->getLoc(), fmt::format("argument %{} is block-quantised ({}) but not a "
                                       "{{param}}: quantised types are for weights only",
                                       a->getName(), elemTypeName(t.elem).str()));
      return nullptr;
    }
    if (isQuantized(t.elem) &&
        (t.rank() == 0 || !t.dims.back().isMultipleOf(blockElems(t.elem)))) {
      errorAt(a->getLoc(), fmt::format("argument %{}: the innermost dim of a {} tensor must "
                                       "be a multiple of {}, got {}", a->getName(),
                                       elemTypeName(t.elem).str(), blockElems(t.elem), t.str()));
      return nullptr;
    }
  }
  return f;
}

std::unique_ptr<Module> Parser::parseModule() {
  auto m = std::make_unique<Module>();
  bool braced = false;
  if (tok.isIdent("module")) {
    consume();
    if (tok.is(Token::AtName)) {
      m->name = tok.text.drop_front().str();
      consume();
    } else {
      error("expected a module name '@name'");
      return nullptr;
    }
    if (expect(Token::LBrace, "'{' after the module name"))
      return nullptr;
    braced = true;
  }
  bool failed = false;
  llvm::StringSet<> names;
  while (!tok.is(Token::Eof) && !(braced && tok.is(Token::RBrace))) {
    if (!tok.isIdent("func")) {
      error(fmt::format("expected 'func', found '{}'", describe(tok)));
      return nullptr;
    }
    llvm::SMLoc loc = tok.loc();
    auto f = parseFunction();
    if (!f) {
      failed = true;
      // Resume at the next function, if any.
      while (!tok.is(Token::Eof) && !tok.isIdent("func"))
        consume();
      continue;
    }
    if (!names.insert(f->getName()).second) {
      errorAt(loc, fmt::format("redefinition of function @{}", f->getName()));
      failed = true;
    }
    m->add(std::move(f));
  }
  if (braced && expect(Token::RBrace, "'}' to close the module"))
    return nullptr;
  if (braced && !tok.is(Token::Eof)) {
    error(fmt::format("unexpected '{}' after the module", describe(tok)));
    return nullptr;
  }
  if (failed || diag.getNumErrors())
    return nullptr;
  return m;
}

std::unique_ptr<Module> moe::parseModule(llvm::SourceMgr &sm, unsigned bufferId,
                                         DiagEngine &diag) {
  unsigned before = diag.getNumErrors();
  Parser p(sm.getMemoryBuffer(bufferId)->getBuffer(), diag);
  auto m = p.parseModule();
  if (diag.getNumErrors() != before)
    return nullptr;
  return m;
}

llvm::Expected<std::unique_ptr<Module>> moe::parseModuleString(llvm::StringRef text,
                                                               llvm::StringRef name) {
  llvm::SourceMgr sm;
  sm.AddNewSourceBuffer(llvm::MemoryBuffer::getMemBufferCopy(text, name), llvm::SMLoc());
  std::string messages;
  DiagEngine diag(&sm);
  diag.setHandler([&](const Diagnostic &d) {
    std::string s;
    llvm::raw_string_ostream os(s);
    static const llvm::SourceMgr::DiagKind kinds[] = {
        llvm::SourceMgr::DK_Error, llvm::SourceMgr::DK_Warning, llvm::SourceMgr::DK_Remark,
        llvm::SourceMgr::DK_Note};
    sm.PrintMessage(os, d.loc, kinds[(int)d.severity], d.message);
    messages += os.str();
  });
  auto m = parseModule(sm, 1, diag);
  if (!m)
    return err(messages);
  m->clearLocations(); // they point into `sm`, which dies here
  return m;
}
