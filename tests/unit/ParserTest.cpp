//===- ParserTest.cpp - The .moe text format: parsing ---------------------===//
//
// DESIGN.md's grammar and promises: the Qwen3 example parses with the types
// it states; print(parse(x)) is a fixed point for every file of examples/;
// the parser reports every independent error once, located, and a value
// defined by a broken op is poisoned silently; comments, the module form,
// several functions and several results; canonical symbolic dims; exact
// float round-trips; escaped strings.
//
//===----------------------------------------------------------------------===//
#include "ir/Parser.h"
#include "tests/unit/IRTestUtil.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"

#include "llvm/Support/MemoryBuffer.h"
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace moe;
using namespace moe::test;

namespace {

/// A diagnostic as reported, with its position resolved.
struct Diag {
  Severity severity;
  std::string message;
  unsigned line = 0, col = 0;
};

/// Parses `text` through a SourceMgr of our own, collecting diagnostics.
struct ParseResult {
  std::unique_ptr<Module> module;
  std::vector<Diag> diags;
  size_t numErrors() const {
    size_t n = 0;
    for (auto &d : diags)
      n += d.severity == Severity::Error;
    return n;
  }
  std::string all() const {
    std::string s;
    for (auto &d : diags)
      s += std::to_string(d.line) + ":" + std::to_string(d.col) + ": " + d.message + "\n";
    return s;
  }
};

ParseResult parse(llvm::StringRef text) {
  ParseResult r;
  llvm::SourceMgr sm;
  unsigned id = sm.AddNewSourceBuffer(llvm::MemoryBuffer::getMemBufferCopy(text, "test.moe"),
                                      llvm::SMLoc());
  DiagEngine diag(&sm);
  diag.setHandler([&](const Diagnostic &d) {
    Diag x{d.severity, d.message};
    if (d.loc.isValid()) {
      auto [line, col] = sm.getLineAndColumn(d.loc, id);
      x.line = line;
      x.col = col;
    }
    r.diags.push_back(x);
  });
  r.module = parseModule(sm, id, diag);
  if (r.module)
    r.module->clearLocations(); // they point into `sm`, which dies here
  return r;
}

std::unique_ptr<Module> mustParse(llvm::StringRef text) {
  auto m = parseModuleString(text);
  if (!m) {
    ADD_FAILURE() << "parse failed:\n" << llvm::toString(m.takeError()) << "\nof:\n"
                  << text.str();
    return nullptr;
  }
  return std::move(*m);
}

/// The value named `name` in `f` (argument or result).
const Value *find(const Function &f, llvm::StringRef name) {
  if (auto *a = f.lookupArgument(name))
    return a;
  for (auto &op : f.getBody())
    for (unsigned i = 0; i < op.getNumResults(); ++i)
      if (op.getResult(i)->getName() == name)
        return op.getResult(i);
  return nullptr;
}

TensorType typeOf(const Function &f, llvm::StringRef name) {
  auto *v = find(f, name);
  EXPECT_TRUE(v) << "no value %" << name.str();
  return v ? v->getType() : TensorType();
}

/// Line (1-based) of the first occurrence of `needle` in `text`, and its column.
std::pair<unsigned, unsigned> lineColOf(llvm::StringRef text, llvm::StringRef needle) {
  size_t pos = text.find(needle);
  EXPECT_NE(pos, llvm::StringRef::npos) << needle.str();
  llvm::StringRef before = text.substr(0, pos);
  unsigned line = before.count('\n') + 1;
  size_t nl = before.rfind('\n');
  unsigned col = nl == llvm::StringRef::npos ? pos + 1 : pos - nl;
  return {line, col};
}

} // namespace

//===----------------------------------------------------------------------===//
// The DESIGN.md example and the examples/ files.
//===----------------------------------------------------------------------===//

TEST(Parser, DesignExampleParsesWithItsTypes) {
  auto r = parse(kDesignExample);
  ASSERT_TRUE(r.module) << r.all();
  EXPECT_EQ(r.numErrors(), 0u);
  ASSERT_EQ(r.module->functions.size(), 1u);
  EXPECT_TRUE(r.module->name.empty());
  const Function &f = *r.module->functions[0];
  EXPECT_EQ(f.getName(), "moe_ffn");
  ASSERT_EQ(f.symbols().size(), 1u);
  EXPECT_EQ(f.symbols()[0].name, "T");
  EXPECT_EQ(f.symbols()[0].lo, 1);
  EXPECT_EQ(f.symbols()[0].hi, 8192);
  ASSERT_EQ(f.getNumArguments(), 5u);
  EXPECT_FALSE(f.getArgument(0)->isParam());
  for (unsigned i = 1; i < 5; ++i)
    EXPECT_TRUE(f.getArgument(i)->isParam()) << i;
  EXPECT_EQ(typeOf(f, "up_exps"), TensorType({128, 768, 2048}, ElemType::Q8_0));
  EXPECT_EQ(typeOf(f, "down_exps"), TensorType({128, 2048, 768}, ElemType::Q8_0));
  ASSERT_EQ(f.resultTypes().size(), 1u);
  EXPECT_EQ(f.resultTypes()[0], f32({T, 2048}));

  // Written types, and the inferred ones where none is written.
  EXPECT_EQ(typeOf(f, "logits"), f32({T, 128}));
  EXPECT_EQ(typeOf(f, "probs"), f32({T, 128}));
  EXPECT_EQ(typeOf(f, "ids"), i32({T, 8}));
  EXPECT_EQ(typeOf(f, "w"), f32({T, 8}));
  EXPECT_EQ(typeOf(f, "wsum"), f32({T, 1}));
  EXPECT_EQ(typeOf(f, "wsc"), f32({T, 1}));
  EXPECT_EQ(typeOf(f, "wn"), f32({T, 8}));
  EXPECT_EQ(typeOf(f, "x3"), f32({T, 1, 2048}));
  EXPECT_EQ(typeOf(f, "up"), f32({T, 8, 768}));
  EXPECT_EQ(typeOf(f, "gate"), f32({T, 8, 768}));
  EXPECT_EQ(typeOf(f, "act"), f32({T, 8, 768}));
  EXPECT_EQ(typeOf(f, "down"), f32({T, 8, 2048}));
  EXPECT_EQ(typeOf(f, "wn3"), f32({T, 8, 1}));
  EXPECT_EQ(typeOf(f, "wd"), f32({T, 8, 2048}));
  EXPECT_EQ(typeOf(f, "out"), f32({T, 2048}));

  // Attributes as written.
  auto *wsum = find(f, "wsum")->getDefiningOp();
  EXPECT_TRUE(wsum->attrs().getFlag("keepdim"));
  EXPECT_EQ(wsum->attrs().getInt("axis", 99), 1);
  auto *wsc = find(f, "wsc")->getDefiningOp();
  EXPECT_EQ(wsc->attrs().getNumber("min", 0), 6.1e-5);
  auto *x3 = find(f, "x3")->getDefiningOp();
  ASSERT_TRUE(x3->attrs().get("shape"));
  EXPECT_EQ(x3->attrs().get("shape")->asDims(), (Shape{T, 1, 2048}));
  // 16 ops including the return; use-def chains built.
  EXPECT_EQ(f.getBody().size(), 16u);
  EXPECT_EQ(find(f, "ids")->getUses().size(), 4u); // gather and three matmul_id
  EXPECT_EQ(find(f, "x3")->getUsers().size(), 2u);
  DiagEngine diag;
  EXPECT_TRUE(verifyModule(*r.module, diag));
}

TEST(Parser, PrintParseIsAFixedPointOnEveryExample) {
  auto dir = examplesDir();
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  std::vector<std::filesystem::path> files;
  for (auto &e : std::filesystem::directory_iterator(dir))
    if (e.path().extension() == ".moe")
      files.push_back(e.path());
  std::sort(files.begin(), files.end());
  // DESIGN.md: qwen3, gptoss, gemma4, each real-size and tiny.
  for (const char *n : {"qwen3.moe", "gptoss.moe", "gemma4.moe", "qwen3_tiny.moe",
                        "gptoss_tiny.moe", "gemma4_tiny.moe"})
    EXPECT_TRUE(std::filesystem::exists(dir / n)) << n;
  for (auto &p : files) {
    SCOPED_TRACE(p.filename().string());
    std::string text = readFile(p);
    auto m1 = mustParse(text);
    ASSERT_TRUE(m1);
    std::string p1 = toString(*m1);
    auto m2 = mustParse(p1);
    ASSERT_TRUE(m2);
    std::string p2 = toString(*m2);
    EXPECT_EQ(p1, p2);
    DiagEngine diag;
    EXPECT_TRUE(verifyModule(*m2, diag));
    // Every result type is printed.
    for (auto &op : m2->functions[0]->getBody())
      if (op.getNumResults()) {
        std::string line = "%" + op.getResult()->getName() + " = ";
        auto pos = p2.find(line);
        ASSERT_NE(pos, std::string::npos) << line;
        auto eol = p2.find('\n', pos);
        EXPECT_NE(p2.substr(pos, eol - pos).find(" : " + op.getResult()->getType().str()),
                  std::string::npos)
            << p2.substr(pos, eol - pos);
      }
  }
}

TEST(Parser, DesignExamplePrintIsAFixedPoint) {
  auto m1 = mustParse(kDesignExample);
  ASSERT_TRUE(m1);
  std::string p1 = toString(*m1);
  auto m2 = mustParse(p1);
  ASSERT_TRUE(m2);
  EXPECT_EQ(toString(*m2), p1);
}

//===----------------------------------------------------------------------===//
// Error recovery and locations.
//===----------------------------------------------------------------------===//

TEST(Parser, TwoIndependentErrorsAreBothReportedAndLocated) {
  const char *text = "func @f(%x: tensor<T x 64 x f32>) -> tensor<T x 64 x f32>\n"
                     "    where T in [1, 16] {\n"
                     "  %a = reshape %x {shape = [7, 64]}\n"
                     "  %ok = neg %x\n"
                     "  %c = reduce_sum %x {axis = 5}\n"
                     "  return %ok\n"
                     "}\n";
  auto r = parse(text);
  EXPECT_FALSE(r.module);
  ASSERT_EQ(r.numErrors(), 2u) << r.all();
  auto [l1, c1] = lineColOf(text, "reshape");
  EXPECT_EQ(r.diags[0].line, l1);
  EXPECT_EQ(r.diags[0].col, c1);
  EXPECT_EQ(r.diags[0].line, 3u);
  EXPECT_EQ(r.diags[0].col, 8u);
  EXPECT_NE(r.diags[0].message.find("'reshape' op"), std::string::npos) << r.all();
  EXPECT_NE(r.diags[0].message.find("elements"), std::string::npos) << r.all();
  auto [l2, c2] = lineColOf(text, "reduce_sum");
  EXPECT_EQ(r.diags[1].line, l2);
  EXPECT_EQ(r.diags[1].col, c2);
  EXPECT_NE(r.diags[1].message.find("'reduce_sum' op"), std::string::npos) << r.all();
  EXPECT_NE(r.diags[1].message.find("out of range"), std::string::npos) << r.all();
}

TEST(Parser, APoisonedValueDoesNotCascade) {
  const char *text = "func @f(%x: tensor<T x 64 x f32>) -> tensor<T x 64 x f32>\n"
                     "    where T in [1, 16] {\n"
                     "  %a = reshape %x {shape = [7, 64]}\n"   // error
                     "  %b = add %x, %a\n"                     // uses poisoned %a
                     "  %c = neg %b\n"                         // transitively poisoned
                     "  %d = mul %c, %a : tensor<T x 64 x f32>\n"
                     "  %e = bogus_op %x\n"                    // independent error
                     "  %g = exp %e\n"                         // poisoned
                     "  return %x\n"
                     "}\n";
  auto r = parse(text);
  EXPECT_FALSE(r.module);
  ASSERT_EQ(r.numErrors(), 2u) << r.all();
  EXPECT_EQ(r.diags[0].line, 3u);
  EXPECT_EQ(r.diags[1].line, 7u);
  EXPECT_EQ(r.diags[1].col, 8u);
  EXPECT_NE(r.diags[1].message.find("unknown operation 'bogus_op'"), std::string::npos)
      << r.all();
}

TEST(Parser, SyntaxErrorsRecoverAtTheNextLine) {
  const char *text = "func @f(%x: tensor<T x 64 x f32>) -> tensor<T x 64 x f32>\n"
                     "    where T in [1, 16] {\n"
                     "  %a = neg %x {axis = }\n"
                     "  %b = = neg %x\n"
                     "  %c = neg %x\n"
                     "  return %c\n"
                     "}\n";
  auto r = parse(text);
  EXPECT_FALSE(r.module);
  ASSERT_EQ(r.numErrors(), 2u) << r.all();
  EXPECT_EQ(r.diags[0].line, 3u);
  EXPECT_EQ(r.diags[1].line, 4u);
}

TEST(Parser, ErrorLocations) {
  struct Case {
    const char *body;     // one op line
    const char *at;       // text the error points at (first occurrence in the line)
    const char *message;  // substring of the message
    bool checkCol = true;
  };
  const Case cases[] = {
      {"  %a = neg %nope\n", "%nope", "use of undefined value %nope"},
      {"  %a = neg %x : tensor<7 x 64 x f32>\n", "tensor<7", "does not match the inferred type"},
      {"  %a = frobnicate %x\n", "frobnicate", "unknown operation 'frobnicate'"},
      {"  %a = reduce_sum %x {axis = 1, bogus}\n", "reduce_sum", "has no attribute 'bogus'"},
      {"  %a = reduce_sum %x\n", "reduce_sum", "requires attribute 'axis'"},
      {"  %a = reduce_sum %x {axis = 1.5}\n", "reduce_sum", "must be an integer"},
      // Located on its line (at the op or at the symbol).
      {"  %a = reshape %x {shape = [U, 64]}\n", "reshape", "undeclared symbol 'U'", false},
      {"  %a = add %x, %x, %x\n", "add", "expects 2 operands, got 3"},
      {"  %a = neg %x : tensor<T x 64 x f99>\n", "f99", "unknown element type 'f99'"},
  };
  for (auto &c : cases) {
    SCOPED_TRACE(c.body);
    std::string text = std::string("func @f(%x: tensor<T x 64 x f32>) -> tensor<T x 64 x f32>\n"
                                   "    where T in [1, 16] {\n") +
                       c.body + "  return %x\n}\n";
    auto r = parse(text);
    EXPECT_FALSE(r.module);
    ASSERT_EQ(r.numErrors(), 1u) << r.all();
    auto [line, col] = lineColOf(llvm::StringRef(text).drop_front(text.find(c.body)), c.at);
    EXPECT_EQ(r.diags[0].line, line + 2) << r.all();
    if (c.checkCol) {
      EXPECT_EQ(r.diags[0].col, col) << r.all();
    }
    EXPECT_NE(r.diags[0].message.find(c.message), std::string::npos) << r.all();
  }
}

TEST(Parser, SignatureErrors) {
  // Undeclared symbol in an argument type.
  auto r = parse("func @f(%x: tensor<U x 64 x f32>) -> tensor<U x 64 x f32> {\n"
                 "  return %x\n}\n");
  EXPECT_FALSE(r.module);
  ASSERT_GE(r.numErrors(), 1u);
  EXPECT_NE(r.diags[0].message.find("undeclared symbol 'U'"), std::string::npos) << r.all();
  EXPECT_EQ(r.diags[0].line, 1u);
  EXPECT_EQ(r.diags[0].col, 13u);
  // Return type mismatch.
  r = parse("func @f(%x: tensor<4 x f32>) -> tensor<8 x f32> {\n  return %x\n}\n");
  EXPECT_FALSE(r.module);
  ASSERT_EQ(r.numErrors(), 1u) << r.all();
  EXPECT_EQ(r.diags[0].line, 2u);
  EXPECT_NE(r.diags[0].message.find("tensor<8 x f32>"), std::string::npos) << r.all();
  // Missing return.
  r = parse("func @f(%x: tensor<4 x f32>) -> tensor<4 x f32> {\n  %a = neg %x\n}\n");
  EXPECT_FALSE(r.module);
  ASSERT_EQ(r.numErrors(), 1u) << r.all();
  EXPECT_NE(r.diags[0].message.find("return"), std::string::npos) << r.all();
  // Redefinition of a value.
  r = parse("func @f(%x: tensor<4 x f32>) -> tensor<4 x f32> {\n  %a = neg %x\n"
            "  %a = exp %x\n  return %a\n}\n");
  EXPECT_FALSE(r.module);
  ASSERT_EQ(r.numErrors(), 1u) << r.all();
  EXPECT_EQ(r.diags[0].line, 3u);
  EXPECT_NE(r.diags[0].message.find("redefinition of value %a"), std::string::npos) << r.all();
  // A block-quantised argument that is not a param.
  r = parse("func @f(%w: tensor<4 x 32 x q8_0>) -> tensor<4 x f32> {\n"
            "  %c = constant {value = 0.0} : tensor<4 x f32>\n  return %c\n}\n");
  EXPECT_FALSE(r.module);
  ASSERT_EQ(r.numErrors(), 1u) << r.all();
  EXPECT_NE(r.diags[0].message.find("param"), std::string::npos) << r.all();
  // Use before definition.
  r = parse("func @f(%x: tensor<4 x f32>) -> tensor<4 x f32> {\n  %a = neg %b\n"
            "  %b = exp %x\n  return %a\n}\n");
  EXPECT_FALSE(r.module);
  ASSERT_GE(r.numErrors(), 1u) << r.all();
  EXPECT_NE(r.diags[0].message.find("used before its definition"), std::string::npos)
      << r.all();
  EXPECT_EQ(r.diags[0].line, 2u);
  EXPECT_EQ(r.diags[0].col, 12u);
}

// The recovery skips to the next line after an error; a '}' closing the body
// on the same line as the broken op must not be skipped with it, and the
// broken op's own error must be the only one reported.
// DISABLED: product bug in ir/Parser.cpp: Parser::skipLine() skips the rest
// of the line including the function's closing '}', so parseFunction() then
// fails on "expected '}' to close the function body, found 'end of file'"
// (an extra, cascading error at EOF) and returns before reporting the
// pending forward references, so `return %nope }` loses the real error
// ("use of undefined value %nope") entirely.
TEST(Parser, RecoveryKeepsTheClosingBraceOnTheBrokenLine) {
  auto r = parse("func @f(%x: tensor<4 x f32>) -> tensor<4 x f32> {\n"
                 "  %a = neg %x : tensor<5 x f32> }\n");
  EXPECT_FALSE(r.module);
  ASSERT_EQ(r.numErrors(), 1u) << r.all();
  EXPECT_EQ(r.diags[0].line, 2u);
  EXPECT_NE(r.diags[0].message.find("does not match the inferred type"), std::string::npos)
      << r.all();

  r = parse("func @f(%x: tensor<4 x f32>) -> tensor<4 x f32> {\n"
            "  %a = neg %x\n"
            "  return %nope }\n");
  EXPECT_FALSE(r.module);
  ASSERT_EQ(r.numErrors(), 1u) << r.all();
  EXPECT_EQ(r.diags[0].line, 3u);
  EXPECT_EQ(r.diags[0].col, 10u);
  EXPECT_NE(r.diags[0].message.find("use of undefined value %nope"), std::string::npos)
      << r.all();

  r = parse("func @f(%x: tensor<4 x f32>) -> tensor<4 x f32> { return %nope }\n");
  EXPECT_FALSE(r.module);
  ASSERT_EQ(r.numErrors(), 1u) << r.all();
  EXPECT_NE(r.diags[0].message.find("use of undefined value %nope"), std::string::npos)
      << r.all();
}

TEST(Parser, OneLineFunctionsParse) {
  auto m = mustParse("func @f(%x: tensor<4 x f32>) -> tensor<4 x f32> { return %x }\n");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->functions[0]->getBody().size(), 1u);
  m = mustParse("func @f(%x: tensor<4 x f32>) -> tensor<4 x f32> {\n  %a = neg %x\n"
                "  return %a }\n");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->functions[0]->getBody().size(), 2u);
}

TEST(Parser, ErrorsInTwoFunctionsAreBothReported) {
  const char *text = "func @f(%x: tensor<4 x f32>) -> tensor<4 x f32> {\n"
                     "  %a = reshape %x {shape = [5]}\n"
                     "  return %x\n"
                     "}\n"
                     "func @g(%x: tensor<4 x f32>) -> tensor<4 x f32> {\n"
                     "  %a = topk %x {k = 5}\n"
                     "  return %x\n"
                     "}\n";
  auto r = parse(text);
  EXPECT_FALSE(r.module);
  ASSERT_EQ(r.numErrors(), 2u) << r.all();
  EXPECT_EQ(r.diags[0].line, 2u);
  EXPECT_EQ(r.diags[1].line, 6u);
}

TEST(Parser, ParseModuleStringReportsLocatedMessages) {
  auto m = parseModuleString("func @f(%x: tensor<4 x f32>) -> tensor<4 x f32> {\n"
                             "  %a = reshape %x {shape = [5]}\n  return %x\n}\n",
                             "in.moe");
  ASSERT_FALSE(m);
  std::string msg = llvm::toString(m.takeError());
  EXPECT_NE(msg.find("in.moe:2:8: error:"), std::string::npos) << msg;
}

//===----------------------------------------------------------------------===//
// Grammar features.
//===----------------------------------------------------------------------===//

TEST(Parser, CommentsAreIgnored) {
  auto m = mustParse("// leading comment\n"
                     "func @f(%x: tensor<T x 4 x f32>, // the input\n"
                     "        %w: tensor<8 x 4 x f32> {param}) // a weight\n"
                     "    -> tensor<T x 8 x f32> where T in [1, 4] { // body follows\n"
                     "  // a whole-line comment with tokens: %y = neg %x {axis = }\n"
                     "  %y = matmul %x, %w // trailing\n"
                     "  return %y // done\n"
                     "} // end\n"
                     "// trailing comment");
  ASSERT_TRUE(m);
  auto &f = *m->functions[0];
  EXPECT_EQ(f.getBody().size(), 2u);
  EXPECT_EQ(typeOf(f, "y"), f32({T, 8}));
}

TEST(Parser, ModuleFormAndSeveralFunctions) {
  const char *text = "module @layer {\n"
                     "  func @a(%x: tensor<4 x f32>) -> tensor<4 x f32> {\n"
                     "    %y = exp %x\n"
                     "    return %y\n"
                     "  }\n"
                     "  func @b(%x: tensor<T x f32>) -> tensor<T x f32> where T in [1, 9] {\n"
                     "    %y = neg %x\n"
                     "    return %y\n"
                     "  }\n"
                     "}\n";
  auto m = mustParse(text);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->name, "layer");
  ASSERT_EQ(m->functions.size(), 2u);
  ASSERT_TRUE(m->lookup("a"));
  ASSERT_TRUE(m->lookup("b"));
  EXPECT_TRUE(m->lookup("a")->symbols().empty());
  EXPECT_EQ(m->lookup("b")->symbols().size(), 1u);
  std::string p = toString(*m);
  EXPECT_EQ(p.rfind("module @layer {\n", 0), 0u) << p;
  auto m2 = mustParse(p);
  ASSERT_TRUE(m2);
  EXPECT_EQ(m2->name, "layer");
  EXPECT_EQ(toString(*m2), p);

  // Several functions without the module wrapper.
  auto bare = mustParse("func @a(%x: tensor<4 x f32>) -> tensor<4 x f32> {\n  return %x\n}\n"
                        "func @b(%x: tensor<4 x f32>) -> tensor<4 x f32> {\n  return %x\n}\n");
  ASSERT_TRUE(bare);
  EXPECT_TRUE(bare->name.empty());
  EXPECT_EQ(bare->functions.size(), 2u);
  EXPECT_EQ(toString(*bare).find("module"), std::string::npos);

  // The same function name twice is an error.
  auto r = parse("func @a(%x: tensor<4 x f32>) -> tensor<4 x f32> {\n  return %x\n}\n"
                 "func @a(%x: tensor<4 x f32>) -> tensor<4 x f32> {\n  return %x\n}\n");
  EXPECT_FALSE(r.module);
  ASSERT_EQ(r.numErrors(), 1u) << r.all();
  EXPECT_EQ(r.diags[0].line, 4u);
  EXPECT_NE(r.diags[0].message.find("redefinition of function @a"), std::string::npos);
}

TEST(Parser, MultipleResults) {
  const char *text = "func @route(%l: tensor<T x 8 x f32>)\n"
                     "    -> tensor<T x 8 x f32>, tensor<T x 2 x i32> where T in [1, 64] {\n"
                     "  %p = softmax %l\n"
                     "  %ids = topk %p {k = 2}\n"
                     "  return %p, %ids\n"
                     "}\n";
  auto m = mustParse(text);
  ASSERT_TRUE(m);
  auto &f = *m->functions[0];
  ASSERT_EQ(f.resultTypes().size(), 2u);
  EXPECT_EQ(f.resultTypes()[0], f32({T, 8}));
  EXPECT_EQ(f.resultTypes()[1], i32({T, 2}));
  EXPECT_EQ(f.getReturn()->getNumOperands(), 2u);
  std::string p = toString(*m);
  EXPECT_NE(p.find("-> tensor<T x 8 x f32>, tensor<T x 2 x i32> where T in [1, 64] {"),
            std::string::npos)
      << p;
  EXPECT_NE(p.find("  return %p, %ids\n"), std::string::npos) << p;
  auto m2 = mustParse(p);
  ASSERT_TRUE(m2);
  EXPECT_EQ(toString(*m2), p);
  // Returning the wrong number of values.
  auto r = parse("func @f(%x: tensor<4 x f32>) -> tensor<4 x f32>, tensor<4 x f32> {\n"
                 "  return %x\n}\n");
  EXPECT_FALSE(r.module);
  EXPECT_EQ(r.numErrors(), 1u) << r.all();
}

TEST(Parser, SymbolicExpressionsArePrintedCanonically) {
  const char *text =
      "func @f(%a: tensor<8*T x f32>, %b: tensor<T*8 x f32>, %c: tensor<T+1 x f32>,\n"
      "        %d: tensor<(T+1)*2 x f32>, %e: tensor<1+T x f32>, %g: tensor<T*U x 4 x f32>)\n"
      "    -> tensor<2*T+2 x f32> where T in [1, 64], U in [1, 4] {\n"
      "  %r = reshape %a {shape = [T*8]}\n"
      "  %s = add %r, %b : tensor<8*T x f32>\n"
      "  %t = add %c, %e\n"
      "  %u = concat %t, %c {axis = 0} : tensor<2*T+2 x f32>\n"
      "  %v = add %u, %d\n"
      "  %w = reshape %s {shape = [2*T, (1+1)*2]}\n"
      "  return %v\n"
      "}\n";
  auto m = mustParse(text);
  ASSERT_TRUE(m);
  auto &f = *m->functions[0];
  DimExpr U = DimExpr::symbol("U");
  EXPECT_EQ(typeOf(f, "a"), f32({DimExpr(8) * T}));
  EXPECT_EQ(typeOf(f, "b"), typeOf(f, "a"));
  EXPECT_EQ(typeOf(f, "c"), f32({T + 1}));
  EXPECT_EQ(typeOf(f, "e"), typeOf(f, "c"));
  EXPECT_EQ(typeOf(f, "d"), f32({DimExpr(2) * T + 2}));
  EXPECT_EQ(typeOf(f, "g"), f32({T * U, 4}));
  EXPECT_EQ(typeOf(f, "u"), f32({DimExpr(2) * T + 2}));
  EXPECT_EQ(typeOf(f, "w"), f32({DimExpr(2) * T, 4}));
  std::string p = toString(*m);
  EXPECT_NE(p.find("%a: tensor<8*T x f32>"), std::string::npos) << p;
  EXPECT_NE(p.find("%b: tensor<8*T x f32>"), std::string::npos) << p;
  EXPECT_NE(p.find("%c: tensor<T+1 x f32>"), std::string::npos) << p;
  EXPECT_NE(p.find("%d: tensor<2*T+2 x f32>"), std::string::npos) << p;
  EXPECT_NE(p.find("%e: tensor<T+1 x f32>"), std::string::npos) << p;
  EXPECT_NE(p.find("%g: tensor<T*U x 4 x f32>"), std::string::npos) << p;
  EXPECT_NE(p.find("where T in [1, 64], U in [1, 4] {"), std::string::npos) << p;
  EXPECT_NE(p.find("%r = reshape %a {shape = [8*T]} : tensor<8*T x f32>"), std::string::npos)
      << p;
  EXPECT_NE(p.find("%w = reshape %s {shape = [2*T, 4]} : tensor<2*T x 4 x f32>"),
            std::string::npos)
      << p;
  auto m2 = mustParse(p);
  ASSERT_TRUE(m2);
  EXPECT_EQ(toString(*m2), p);
}

TEST(Parser, FloatsRoundTripExactly) {
  const char *text = "func @f(%x: tensor<T x 64 x f32>) -> tensor<T x 64 x f32>\n"
                     "    where T in [1, 16] {\n"
                     "  %a = clamp %x {min = 6.1e-5}\n"
                     "  %b = swiglu_oai %a, %x {alpha = 1.702, limit = 7.0}\n"
                     "  %c = rms_norm %b {eps = 1.0e-6}\n"
                     "  %d = scale %c {factor = 0.1, bias = -2.5e-10}\n"
                     "  %e = pow %d {exponent = 0.3333333333333333}\n"
                     "  %f = clamp %e {min = -1.0e30, max = 123456.789}\n"
                     "  return %f\n"
                     "}\n";
  auto m = mustParse(text);
  ASSERT_TRUE(m);
  auto &f = *m->functions[0];
  auto num = [&](const char *v, const char *a) {
    return find(f, v)->getDefiningOp()->attrs().get(a)->getNumber();
  };
  // Parsed to exactly the C++ literal.
  EXPECT_EQ(num("a", "min"), 6.1e-5);
  EXPECT_EQ(num("b", "alpha"), 1.702);
  EXPECT_EQ(num("b", "limit"), 7.0);
  EXPECT_EQ(num("c", "eps"), 1.0e-6);
  EXPECT_EQ(num("d", "factor"), 0.1);
  EXPECT_EQ(num("d", "bias"), -2.5e-10);
  EXPECT_EQ(num("e", "exponent"), 1.0 / 3.0);
  EXPECT_EQ(num("f", "min"), -1.0e30);
  EXPECT_EQ(num("f", "max"), 123456.789);
  // Printed in the shortest exact form, always as a float.
  std::string p = toString(*m);
  EXPECT_NE(p.find("{min = 6.1e-5}"), std::string::npos) << p;
  EXPECT_NE(p.find("{alpha = 1.702, limit = 7.0}"), std::string::npos) << p;
  EXPECT_NE(p.find("{eps = 1.0e-6}"), std::string::npos) << p;
  EXPECT_NE(p.find("{factor = 0.1, bias = -2.5e-10}"), std::string::npos) << p;
  auto m2 = mustParse(p);
  ASSERT_TRUE(m2);
  EXPECT_EQ(toString(*m2), p);
  auto &f2 = *m2->functions[0];
  for (auto *n : {"a", "b", "c", "d", "e", "f"}) {
    auto *o1 = find(f, n)->getDefiningOp(), *o2 = find(f2, n)->getDefiningOp();
    EXPECT_EQ(o1->attrs(), o2->attrs()) << n;
  }
}

TEST(Parser, FormatFloatReadsBackAsTheSameDouble) {
  EXPECT_EQ(formatFloat(6.1e-5), "6.1e-5");
  EXPECT_EQ(formatFloat(1.702), "1.702");
  EXPECT_EQ(formatFloat(7.0), "7.0");
  EXPECT_EQ(formatFloat(1.0e-6), "1.0e-6");
  EXPECT_EQ(formatFloat(0.0), "0.0");
  EXPECT_EQ(formatFloat(-0.5), "-0.5");
  double samples[] = {0.1, 1.0 / 3.0, 2.0 / 3.0, 1e300, -1e-300, 5e-324, 123456789.125,
                      3.141592653589793, 1.7976931348623157e308, 0.000123, 100.0, 1024.0};
  for (double d : samples) {
    std::string s = formatFloat(d);
    SCOPED_TRACE(s);
    EXPECT_EQ(std::strtod(s.c_str(), nullptr), d);
    EXPECT_TRUE(s.find('.') != std::string::npos || s.find('e') != std::string::npos);
  }
}

TEST(Parser, StringsWithEscapesInAttributes) {
  const char *text = "func @f(%x: tensor<4 x f32>,\n"
                     "        %w: tensor<4 x f32> {param, gguf = \"blk.0.\\\"ffn\\\"\\\\down\\n\"})\n"
                     "    -> tensor<4 x f32> {\n"
                     "  %y = add %x, %w\n"
                     "  return %y\n"
                     "}\n";
  auto m = mustParse(text);
  ASSERT_TRUE(m);
  auto &f = *m->functions[0];
  const Attribute *g = f.getArgument(1)->argAttrs().get("gguf");
  ASSERT_TRUE(g);
  ASSERT_EQ(g->kind(), Attribute::Kind::String);
  EXPECT_EQ(g->getString(), "blk.0.\"ffn\"\\down\n");
  EXPECT_TRUE(f.getArgument(1)->isParam());
  std::string p = toString(*m);
  EXPECT_NE(p.find("{param, gguf = \"blk.0.\\\"ffn\\\"\\\\down\\n\"}"), std::string::npos) << p;
  auto m2 = mustParse(p);
  ASSERT_TRUE(m2);
  EXPECT_EQ(m2->functions[0]->getArgument(1)->argAttrs().get("gguf")->getString(),
            g->getString());
  EXPECT_EQ(toString(*m2), p);
  // An unterminated string is an error, not a crash.
  auto r = parse("func @f(%x: tensor<4 x f32> {name = \"oops}) -> tensor<4 x f32> {\n"
                 "  return %x\n}\n");
  EXPECT_FALSE(r.module);
  EXPECT_GE(r.numErrors(), 1u);
}

TEST(Parser, WrittenTypesAreCheckedAgainstInferred) {
  // A correct written type is accepted; the elem type matters too.
  auto ok = parse("func @f(%x: tensor<T x 8 x f32>) -> tensor<T x 2 x i32> where T in [2, 9] {\n"
                  "  %i = topk %x {k = 2} : tensor<T x 2 x i32>\n  return %i\n}\n");
  EXPECT_TRUE(ok.module) << ok.all();
  auto bad = parse("func @f(%x: tensor<T x 8 x f32>) -> tensor<T x 2 x f32> where T in [2, 9] {\n"
                   "  %i = topk %x {k = 2} : tensor<T x 2 x f32>\n  return %i\n}\n");
  EXPECT_FALSE(bad.module);
  ASSERT_GE(bad.numErrors(), 1u);
  EXPECT_NE(bad.diags[0].message.find("does not match the inferred type tensor<T x 2 x i32>"),
            std::string::npos)
      << bad.all();
}

TEST(Parser, ConstantsNeedAWrittenType) {
  auto m = mustParse("func @f(%x: tensor<T x 3 x f32>) -> tensor<T x 3 x f32> where T in [1, 4] {\n"
                     "  %eps = constant {value = 1.0e-6} : tensor<f32>\n"
                     "  %v = constant {value = [1.0, 2.0, 3.5]} : tensor<3 x f32>\n"
                     "  %a = add %x, %eps\n"
                     "  %b = mul %a, %v\n"
                     "  return %b\n}\n");
  ASSERT_TRUE(m);
  std::string p = toString(*m);
  EXPECT_NE(p.find("%eps = constant {value = 1.0e-6} : tensor<f32>"), std::string::npos) << p;
  EXPECT_NE(p.find("%v = constant {value = [1.0, 2.0, 3.5]} : tensor<3 x f32>"),
            std::string::npos)
      << p;
  auto r = parse("func @f() -> tensor<f32> {\n  %c = constant {value = 1.0}\n  return %c\n}\n");
  EXPECT_FALSE(r.module);
  ASSERT_EQ(r.numErrors(), 1u) << r.all();
  EXPECT_NE(r.diags[0].message.find("written result type"), std::string::npos) << r.all();
  r = parse("func @f() -> tensor<2 x f32> {\n"
            "  %c = constant {value = [1.0, 2.0, 3.0]} : tensor<2 x f32>\n  return %c\n}\n");
  EXPECT_FALSE(r.module);
  ASSERT_EQ(r.numErrors(), 1u) << r.all();
}
