//===- PrinterTest.cpp - The exact printed form and DOT output ------------===//
//
// DESIGN.md: "The printed form is exactly the style of the example above, and
// tests match it textually": ` x ` between dims, arguments as
// `%a: tensor<...> {param}`, attributes as `{name = value, flag}`, lists as
// `[a, b]`, canonical symbolic dims, one op per line as
// `%r = op %a, %b {attrs} : tensor<...>`, every result type printed.
//
//===----------------------------------------------------------------------===//
#include "ir/Builder.h"
#include "tests/unit/IRTestUtil.h"
#include "ir/Parser.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <sstream>

using namespace moe;
using namespace moe::test;

namespace {

std::unique_ptr<Module> mustParse(llvm::StringRef text) {
  auto m = parseModuleString(text);
  if (!m) {
    ADD_FAILURE() << llvm::toString(m.takeError());
    return nullptr;
  }
  return std::move(*m);
}

size_t count(const std::string &s, const std::string &needle) {
  size_t n = 0;
  for (size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1))
    ++n;
  return n;
}

// ... and as printed: the same style, one space around ':', every type.
const char *kDesignPrinted = R"(func @moe_ffn(%x: tensor<T x 2048 x f32>,
              %gate_inp: tensor<128 x 2048 x f32> {param},
              %up_exps: tensor<128 x 768 x 2048 x q8_0> {param},
              %gate_exps: tensor<128 x 768 x 2048 x q8_0> {param},
              %down_exps: tensor<128 x 2048 x 768 x q8_0> {param})
    -> tensor<T x 2048 x f32> where T in [1, 8192] {
  %logits = matmul %x, %gate_inp : tensor<T x 128 x f32>
  %probs = softmax %logits {axis = -1} : tensor<T x 128 x f32>
  %ids = topk %probs {k = 8} : tensor<T x 8 x i32>
  %w = gather %probs, %ids {axis = 1} : tensor<T x 8 x f32>
  %wsum = reduce_sum %w {axis = 1, keepdim} : tensor<T x 1 x f32>
  %wsc = clamp %wsum {min = 6.1e-5} : tensor<T x 1 x f32>
  %wn = div %w, %wsc : tensor<T x 8 x f32>
  %x3 = reshape %x {shape = [T, 1, 2048]} : tensor<T x 1 x 2048 x f32>
  %up = matmul_id %x3, %up_exps, %ids : tensor<T x 8 x 768 x f32>
  %gate = matmul_id %x3, %gate_exps, %ids : tensor<T x 8 x 768 x f32>
  %act = swiglu %gate, %up : tensor<T x 8 x 768 x f32>
  %down = matmul_id %act, %down_exps, %ids : tensor<T x 8 x 2048 x f32>
  %wn3 = reshape %wn {shape = [T, 8, 1]} : tensor<T x 8 x 1 x f32>
  %wd = mul %down, %wn3 : tensor<T x 8 x 2048 x f32>
  %out = reduce_sum %wd {axis = 1} : tensor<T x 2048 x f32>
  return %out
}
)";

} // namespace

TEST(Printer, ExactFormOfTheDesignExample) {
  auto m = mustParse(kDesignExample);
  ASSERT_TRUE(m);
  EXPECT_EQ(toString(*m), kDesignPrinted);
  // The printed form is itself a fixed point.
  auto m2 = mustParse(kDesignPrinted);
  ASSERT_TRUE(m2);
  EXPECT_EQ(toString(*m2), kDesignPrinted);
}

TEST(Printer, PiecesOfTheForm) {
  auto f = std::make_unique<Function>("f");
  f->symbols().push_back(SymbolDecl{"T", 1, 8192, {}});
  Value *x = f->addArgument(f32({T, 8}), "x");
  Value *w = f->addArgument(f32({8}), "w", attrs({{"param", Attribute::getBool(true)}}));
  f->resultTypes().push_back(f32({T, 8, 1}));
  Builder b(*f);
  auto s = b.create(OpKind::ReduceSum, {x},
                    attrs({{"axis", Attribute::getInt(1)}, {"keepdim", Attribute::getBool(true)}}),
                    "s");
  ASSERT_TRUE(bool(s));
  auto m = b.create(OpKind::Mul, {x, w}, {}, "m");
  ASSERT_TRUE(bool(m));
  auto r = b.create(OpKind::Reshape, {(*m)->getResult()},
                    attrs({{"shape", Attribute::getDims(Shape{T, 8, 1})}}), "r");
  ASSERT_TRUE(bool(r));
  b.createWithType(OpKind::Return, {(*r)->getResult()}, {}, TensorType());
  std::string p = toString(*f);
  EXPECT_EQ(p, "func @f(%x: tensor<T x 8 x f32>,\n"
               "        %w: tensor<8 x f32> {param})\n"
               "    -> tensor<T x 8 x 1 x f32> where T in [1, 8192] {\n"
               "  %s = reduce_sum %x {axis = 1, keepdim} : tensor<T x 1 x f32>\n"
               "  %m = mul %x, %w : tensor<T x 8 x f32>\n"
               "  %r = reshape %m {shape = [T, 8, 1]} : tensor<T x 8 x 1 x f32>\n"
               "  return %r\n"
               "}\n");
}

TEST(Printer, TypesAndSymbols) {
  EXPECT_EQ(f32({T, 64}).str(), "tensor<T x 64 x f32>");
  EXPECT_EQ(f32({}).str(), "tensor<f32>");
  EXPECT_EQ(TensorType({128, 768, 2048}, ElemType::Q8_0).str(), "tensor<128 x 768 x 2048 x q8_0>");
  EXPECT_EQ(TensorType({T}, ElemType::I32).str(), "tensor<T x i32>");
  EXPECT_EQ(TensorType({32}, ElemType::MXFP4).str(), "tensor<32 x mxfp4>");
  EXPECT_EQ(TensorType({32}, ElemType::BF16).str(), "tensor<32 x bf16>");
  EXPECT_EQ(f32({DimExpr(8) * T, T + 1}).str(), "tensor<8*T x T+1 x f32>");
  // Several symbols, no symbols.
  auto f = std::make_unique<Function>("g");
  f->symbols().push_back(SymbolDecl{"T", 1, 64, {}});
  f->symbols().push_back(SymbolDecl{"E", 0, 8, {}});
  Value *x = f->addArgument(f32({T, DimExpr::symbol("E")}), "x");
  f->resultTypes().push_back(x->getType());
  Builder(*f).createWithType(OpKind::Return, {x}, {}, TensorType());
  EXPECT_NE(toString(*f).find("-> tensor<T x E x f32> where T in [1, 64], E in [0, 8] {"),
            std::string::npos)
      << toString(*f);
  auto g = std::make_unique<Function>("h");
  Value *y = g->addArgument(f32({4}), "y");
  g->resultTypes().push_back(y->getType());
  Builder(*g).createWithType(OpKind::Return, {y}, {}, TensorType());
  EXPECT_EQ(toString(*g), "func @h(%y: tensor<4 x f32>)\n    -> tensor<4 x f32> {\n"
                          "  return %y\n}\n");
}

TEST(Printer, AttributeForms) {
  EXPECT_EQ(attrs({{"axis", Attribute::getInt(1)}, {"keepdim", Attribute::getBool(true)}}).str(),
            " {axis = 1, keepdim}");
  EXPECT_EQ(attrs({{"shape", Attribute::getDims(Shape{T, 8, 1})}}).str(), " {shape = [T, 8, 1]}");
  EXPECT_EQ(attrs({{"perm", Attribute::getInts({2, 0, 1})}}).str(), " {perm = [2, 0, 1]}");
  EXPECT_EQ(attrs({{"to", Attribute::getIdent("f16")}}).str(), " {to = f16}");
  EXPECT_EQ(attrs({{"min", Attribute::getFloat(6.1e-5)}}).str(), " {min = 6.1e-5}");
  EXPECT_EQ(attrs({{"alpha", Attribute::getFloat(1.702)}, {"limit", Attribute::getFloat(7.0)}})
                .str(),
            " {alpha = 1.702, limit = 7.0}");
  EXPECT_EQ(attrs({{"start", Attribute::getDim(T - 1)}}).str(), " {start = T-1}");
  EXPECT_EQ(attrs({{"name", Attribute::getString("a\"b")}}).str(), " {name = \"a\\\"b\"}");
  EXPECT_EQ(attrs({{"value", Attribute::getList({Attribute::getFloat(1.0),
                                                 Attribute::getFloat(-2.5)})}})
                .str(),
            " {value = [1.0, -2.5]}");
  EXPECT_EQ(AttrDict().str(), "");
  // A constant dim is an integer attribute.
  EXPECT_TRUE(Attribute::getDim(DimExpr(8)).isInt());
}

TEST(Printer, UnnamedValuesGetFreshUniqueNames) {
  auto f = std::make_unique<Function>("f");
  Value *x = f->addArgument(f32({4}), "");
  Value *y = f->addArgument(f32({4}), "");
  f->resultTypes().push_back(f32({4}));
  Builder b(*f);
  auto a = b.create(OpKind::Add, {x, y});
  ASSERT_TRUE(bool(a));
  auto n = b.create(OpKind::Neg, {(*a)->getResult()});
  ASSERT_TRUE(bool(n));
  auto e = b.create(OpKind::Exp, {(*n)->getResult()}, {}, "not a valid name!");
  ASSERT_TRUE(bool(e));
  b.createWithType(OpKind::Return, {(*e)->getResult()}, {}, TensorType());
  std::string p = toString(*f);
  // Five distinct names (two arguments, three ops), each defined once.
  std::regex def(R"(%([A-Za-z0-9_.$-]+)(: | = ))");
  std::set<std::string> names;
  size_t defs = 0;
  for (std::sregex_iterator it(p.begin(), p.end(), def), end; it != end; ++it) {
    names.insert((*it)[1]);
    ++defs;
  }
  EXPECT_EQ(defs, 5u) << p;
  EXPECT_EQ(names.size(), 5u) << p;
  EXPECT_EQ(p.find("not a valid"), std::string::npos) << p;
  // It reads back as the same graph, and prints the same again.
  auto m = mustParse(p);
  ASSERT_TRUE(m);
  EXPECT_EQ(toString(*m), p);
  // Printing is deterministic.
  EXPECT_EQ(toString(*f), p);
}

TEST(Printer, ClashingNamesAreMadeUnique) {
  auto f = std::make_unique<Function>("f");
  Value *a = f->addArgument(f32({4}), "a");
  Value *b2 = f->addArgument(f32({4}), "a");
  f->resultTypes().push_back(f32({4}));
  Builder b(*f);
  auto s = b.create(OpKind::Sub, {a, b2}, {}, "a");
  ASSERT_TRUE(bool(s));
  auto t = b.create(OpKind::Mul, {(*s)->getResult(), a}, {}, "a");
  ASSERT_TRUE(bool(t));
  b.createWithType(OpKind::Return, {(*t)->getResult()}, {}, TensorType());
  std::string p = toString(*f);
  std::regex def(R"(%([A-Za-z0-9_.$-]+)(: | = ))");
  std::set<std::string> names;
  for (std::sregex_iterator it(p.begin(), p.end(), def), end; it != end; ++it)
    names.insert((*it)[1]);
  EXPECT_EQ(names.size(), 4u) << p;
  EXPECT_TRUE(names.count("a")) << p; // the first keeps its name
  // The graph survives: sub(arg0, arg1), mul(sub, arg0).
  auto m = mustParse(p);
  ASSERT_TRUE(m);
  auto &g = *m->functions[0];
  ASSERT_EQ(g.getBody().size(), 3u);
  Operation &sub = g.getBody().front();
  EXPECT_TRUE(sub.is(OpKind::Sub));
  EXPECT_EQ(sub.getOperand(0), g.getArgument(0));
  EXPECT_EQ(sub.getOperand(1), g.getArgument(1));
  Operation &mul = *std::next(g.getBody().begin());
  EXPECT_EQ(mul.getOperand(0), sub.getResult());
  EXPECT_EQ(mul.getOperand(1), g.getArgument(0));
  EXPECT_EQ(g.getReturn()->getOperand(0), mul.getResult());
  EXPECT_EQ(toString(*m), p);
}

TEST(Printer, ModuleWithSeveralFunctions) {
  auto m = mustParse("module @two {\n"
                     "func @a(%x: tensor<4 x f32>) -> tensor<4 x f32> {\n  return %x\n}\n"
                     "func @b(%x: tensor<4 x f32>) -> tensor<4 x f32> {\n  return %x\n}\n"
                     "}\n");
  ASSERT_TRUE(m);
  EXPECT_EQ(toString(*m), "module @two {\n"
                          "func @a(%x: tensor<4 x f32>)\n    -> tensor<4 x f32> {\n  return %x\n}\n"
                          "\n"
                          "func @b(%x: tensor<4 x f32>)\n    -> tensor<4 x f32> {\n  return %x\n}\n"
                          "}\n");
}

TEST(Printer, DotHasANodePerOpAndEdgesAlongUses) {
  auto m = mustParse(kDesignExample);
  ASSERT_TRUE(m);
  const Function &f = *m->functions[0];
  std::string dot;
  llvm::raw_string_ostream os(dot);
  printDot(f, os);
  os.flush();
  EXPECT_EQ(dot.rfind("digraph \"moe_ffn\" {", 0), 0u) << dot;
  EXPECT_EQ(dot.back(), '\n');
  EXPECT_NE(dot.find("}\n"), std::string::npos);
  // One node per argument and per op (return included).
  size_t nodes = f.getNumArguments() + f.getBody().size();
  std::regex node(R"(^  (n\d+) \[shape=)");
  std::set<std::string> ids;
  size_t nodeLines = 0;
  std::istringstream in(dot);
  std::string line;
  size_t edges = 0;
  std::regex edge(R"(^  (n\d+) -> (n\d+) \[label=\"(\d+)\"\];$)");
  std::vector<std::pair<std::string, std::string>> edgeList;
  while (std::getline(in, line)) {
    std::smatch sm;
    if (std::regex_search(line, sm, node)) {
      ids.insert(sm[1]);
      ++nodeLines;
    }
    if (std::regex_match(line, sm, edge)) {
      ++edges;
      EXPECT_TRUE(ids.count(sm[1])) << "edge from an undeclared node: " << line;
      EXPECT_TRUE(ids.count(sm[2])) << "edge to an undeclared node: " << line;
    }
  }
  EXPECT_EQ(nodeLines, nodes) << dot;
  EXPECT_EQ(ids.size(), nodes) << dot;
  // One edge per operand.
  size_t operands = 0;
  for (auto &op : f.getBody())
    operands += op.getNumOperands();
  EXPECT_EQ(edges, operands) << dot;
  // Params are boxes, the other argument is not; ops are labelled.
  EXPECT_EQ(count(dot, "shape=box"), 4u) << dot;
  EXPECT_NE(dot.find("matmul_id"), std::string::npos);
  EXPECT_NE(dot.find("%logits = matmul"), std::string::npos) << dot;
  EXPECT_NE(dot.find("reduce_sum \\{axis = 1, keepdim\\}"), std::string::npos) << dot;
}
