//===- FuzzNpy.cpp - libFuzzer target: the .npy reader --------------------===//
//
// Any bytes as a .npy file (what `moe-run --input`/`--param` read): parse
// them and convert the array as moe-run would (to f32, to i32, and to a
// Tensor of each element type). Errors only, no crash, no huge allocation.
//
//===----------------------------------------------------------------------===//
#include "runtime/Npy.h"
#include "runtime/Tensor.h"

using namespace moe;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llvm::StringRef bytes(reinterpret_cast<const char *>(data), size);
  auto a = parseNpy(bytes, "fuzz.npy");
  if (!a) {
    llvm::consumeError(a.takeError());
    return 0;
  }
  if (auto f = npyToF32(*a); !f)
    llvm::consumeError(f.takeError());
  if (auto i = npyToI32(*a); !i)
    llvm::consumeError(i.takeError());
  for (ElemType e : {ElemType::F32, ElemType::F16, ElemType::BF16, ElemType::I32,
                     ElemType::Q8_0, ElemType::Q4_0, ElemType::MXFP4})
    if (auto t = Tensor::fromNpy(*a, e); !t)
      llvm::consumeError(t.takeError());
  return 0;
}
