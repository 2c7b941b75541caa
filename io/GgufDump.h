//===- GgufDump.h - Printing GGUF files -------------------------*- C++ -*-===//
//
// A readable listing of a GGUF file: header, every metadata key with its type
// and value (long arrays and strings shortened), and the tensor table with
// each tensor's type, dims (outermost first, as the IR writes them, and ggml's
// ne order), byte size and offsets. What `moe-gguf dump` prints.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "io/Gguf.h"

#include "llvm/Support/raw_ostream.h"

namespace moe::gguf {

/// Prints a value: integers and bools as such, floats as the shortest text
/// that reads back the same, strings quoted and escaped (at most
/// maxStringBytes bytes), arrays as [a, b, ...] (at most maxElements).
void printValue(llvm::raw_ostream &os, const Value &v, unsigned maxElements = 8,
                unsigned maxStringBytes = 200);

/// The type of a value as dump prints it: "uint32", "array<string>".
std::string valueTypeText(const Value &v);

/// The whole listing.
void dump(llvm::raw_ostream &os, const GgufFile &file);

} // namespace moe::gguf
