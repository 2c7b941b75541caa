//===- ApiTestUtil.h - Helpers of the library API's tests -------*- C++ -*-===//
//
// The API tests link libmoe as an outside program does (only moe/Moe.h);
// these helpers read the examples and make deterministic inputs.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "moe/Moe.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace moe::apitest {

inline std::string readFile(const std::string &path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string example(const std::string &name) {
  return readFile(std::string(MOE_SOURCE_DIR) + "/examples/" + name);
}

/// A fresh directory under the test's temporary directory.
inline std::string tempDir(const std::string &name) {
  std::string d = ::testing::TempDir() + "moe-api-" + name + "-" +
                  std::to_string(::testing::UnitTest::GetInstance()->random_seed());
  std::string cmd = "rm -rf '" + d + "' && mkdir -p '" + d + "'";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  return d;
}

/// x[t, i] = cos(0.11 * (t * width + i) + salt): distinct per T and salt.
inline std::vector<float> input(int64_t T, int64_t width, float salt = 0) {
  std::vector<float> x(T * width);
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = std::cos(0.11f * (float)i + salt);
  return x;
}

/// The message of an error, consumed; "" for success.
inline std::string message(llvm::Error e) { return e ? llvm::toString(std::move(e)) : ""; }

/// The kind of a failed call, its error consumed (its message into `msg`).
inline std::optional<ErrorKind> kindOf(llvm::Error e, std::string *msg = nullptr) {
  std::optional<ErrorKind> k = errorKind(e);
  std::string m = message(std::move(e));
  if (msg)
    *msg = m;
  return k;
}
template <typename T>
std::optional<ErrorKind> kindOf(llvm::Expected<T> &x, std::string *msg = nullptr) {
  std::optional<ErrorKind> k = errorKind(x);
  EXPECT_EQ(k, kindOf(x.takeError(), msg)); // both forms agree
  return k;
}
template <typename T>
std::optional<ErrorKind> kindOf(llvm::Expected<T> &&x, std::string *msg = nullptr) {
  std::optional<ErrorKind> k = errorKind(x);
  EXPECT_EQ(k, kindOf(x.takeError(), msg)); // both forms agree
  return k;
}

} // namespace moe::apitest
