//===- Error.h - String errors ----------------------------------*- C++ -*-===//
//
// moe's errors are llvm::StringErrors without an error code: a message for a
// person, with its location and what was expected. err() makes one, from a
// message or from a format string (fmt) and its arguments. A single string
// argument is the message as it is (the non-template overload wins), so a
// message holding braces is not formatted.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "fmt/format.h"
#include "llvm/Support/Error.h"

#include <string>
#include <utility>

namespace moe {

inline llvm::Error err(std::string message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

template <typename... Args>
llvm::Error err(fmt::format_string<Args...> f, Args &&...args) {
  return err(fmt::format(f, std::forward<Args>(args)...));
}

} // namespace moe
