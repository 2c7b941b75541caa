//===- FuzzGguf.cpp - libFuzzer target: the GGUF reader and metadata ------===//
//
// Any bytes as a GGUF file: parse them and, when that succeeds, read every
// metadata value through the typed getters and dump the whole file as
// `moe-gguf dump` does (which decodes every value and the tensor table).
// Bad files are errors with an offset; none may crash or read out of bounds.
//
//===----------------------------------------------------------------------===//
#include "io/Gguf.h"
#include "io/GgufDump.h"

#include "llvm/Support/raw_ostream.h"

using namespace moe::gguf;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  auto file = GgufFile::parse(llvm::ArrayRef<uint8_t>(data, size), "fuzz.gguf");
  if (!file) {
    llvm::consumeError(file.takeError());
    return 0;
  }
  GgufFile &f = **file;
  for (const KeyValue &kv : f.metadata()) {
    llvm::consumeError(f.getU8(kv.key).takeError());
    llvm::consumeError(f.getU32(kv.key).takeError());
    llvm::consumeError(f.getU64(kv.key).takeError());
    llvm::consumeError(f.getI32(kv.key).takeError());
    llvm::consumeError(f.getI64(kv.key).takeError());
    llvm::consumeError(f.getF32(kv.key).takeError());
    llvm::consumeError(f.getF64(kv.key).takeError());
    llvm::consumeError(f.getBool(kv.key).takeError());
    llvm::consumeError(f.getString(kv.key).takeError());
    llvm::consumeError(f.getIntArray(kv.key).takeError());
    llvm::consumeError(f.getFloatArray(kv.key).takeError());
    llvm::consumeError(f.getStringArray(kv.key).takeError());
  }
  // Every tensor's bytes, read in full: a view past the buffer trips ASan.
  unsigned sum = 0;
  for (const TensorInfo &t : f.tensors()) {
    for (uint8_t b : f.tensorBytes(t))
      sum += b;
    if (auto d = f.tensorData(t.name))
      sum += d->size();
    else
      llvm::consumeError(d.takeError());
  }
  (void)sum;
  dump(llvm::nulls(), f);
  return 0;
}
