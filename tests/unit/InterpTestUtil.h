//===- InterpTestUtil.h - Helpers of the interpreter tests ------*- C++ -*-===//
//
// Shared by tests/unit/Interp*Test.cpp: build IR by parsing text, build
// tensors from literal values, run the interpreter, and compare with values
// written in the test from the math (never produced by the interpreter).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/Parser.h"
#include "runtime/Interpreter.h"

#include <gtest/gtest.h>

#include <cmath>

namespace moe::test {

inline Tensor F(std::vector<int64_t> shape, std::vector<float> v,
                ElemType e = ElemType::F32) {
  auto t = Tensor::fromF32(e, shape, v);
  if (!t) {
    ADD_FAILURE() << llvm::toString(t.takeError());
    return Tensor();
  }
  return std::move(*t);
}

inline Tensor I(std::vector<int64_t> shape, std::vector<int32_t> v) {
  auto t = Tensor::fromI32(shape, v);
  if (!t) {
    ADD_FAILURE() << llvm::toString(t.takeError());
    return Tensor();
  }
  return std::move(*t);
}

/// Parses `text` (its first function) and interprets it.
inline llvm::Expected<std::vector<Tensor>> tryRun(llvm::StringRef text,
                                                  std::vector<Tensor> args,
                                                  SymbolBindings syms = {},
                                                  const InterpOptions &opts = {}) {
  auto m = parseModuleString(text);
  if (!m)
    return m.takeError();
  if ((*m)->functions.empty())
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "no function");
  return interpret(*(*m)->functions.front(), args, syms, opts);
}

/// Runs and returns the results; a test failure (and no results) on error.
inline std::vector<Tensor> run(llvm::StringRef text, std::vector<Tensor> args,
                               SymbolBindings syms = {}, const InterpOptions &opts = {}) {
  auto r = tryRun(text, std::move(args), std::move(syms), opts);
  if (!r) {
    ADD_FAILURE() << llvm::toString(r.takeError());
    return {};
  }
  return std::move(*r);
}

/// Runs a one-result function; the result (an empty tensor on failure).
inline Tensor run1(llvm::StringRef text, std::vector<Tensor> args,
                   SymbolBindings syms = {}) {
  auto r = run(text, std::move(args), std::move(syms));
  if (r.size() != 1) {
    ADD_FAILURE() << "expected one result, got " << r.size();
    return Tensor();
  }
  return std::move(r[0]);
}

/// The error message of a run that must fail ("" and a test failure if it
/// succeeds).
inline std::string runError(llvm::StringRef text, std::vector<Tensor> args,
                            SymbolBindings syms = {}) {
  auto r = tryRun(text, std::move(args), std::move(syms));
  if (r) {
    ADD_FAILURE() << "expected an error";
    return "";
  }
  return llvm::toString(r.takeError());
}

/// Float tensor `t` has this shape and these values, each within `tol` of
/// the expected value relative to max(1, |expected|) (0: bit-exact value).
inline void expectF(const Tensor &t, std::vector<int64_t> shape, std::vector<double> want,
                    double tol = 0, ElemType elem = ElemType::F32) {
  EXPECT_EQ(t.elem, elem);
  ASSERT_EQ(t.shape, shape);
  ASSERT_EQ(t.f.size(), want.size());
  for (size_t k = 0; k < want.size(); ++k) {
    if (std::isnan(want[k])) {
      EXPECT_TRUE(std::isnan(t.f[k])) << "element " << k;
      continue;
    }
    if (tol == 0)
      EXPECT_EQ(t.f[k], (float)want[k]) << "element " << k;
    else
      EXPECT_NEAR(t.f[k], want[k], tol * std::max(1.0, std::fabs(want[k])))
          << "element " << k;
  }
}

inline void expectI(const Tensor &t, std::vector<int64_t> shape, std::vector<int32_t> want) {
  EXPECT_EQ(t.elem, ElemType::I32);
  EXPECT_EQ(t.shape, shape);
  EXPECT_EQ(t.i, want);
}

} // namespace moe::test
