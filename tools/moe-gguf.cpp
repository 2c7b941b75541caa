//===- moe-gguf.cpp - Inspect GGUF files ----------------------------------===//
//
//   moe-gguf dump FILE          header, metadata and tensor table
//   moe-gguf data FILE TENSOR   use one tensor's data as moe would: its type
//                               must be one moe supports; prints its size,
//                               file offset and an xxh3 hash of its bytes
//
// A malformed file, a missing tensor or an unsupported tensor type is
// "moe-gguf: error: FILE: ..." on standard error and exit status 1.
//
//===----------------------------------------------------------------------===//
#include "io/Gguf.h"
#include "io/GgufDump.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/xxhash.h"

using namespace llvm;
using namespace moe::gguf;

static cl::SubCommand DumpCmd("dump", "Print the header, metadata and tensors");
static cl::opt<std::string> DumpFile(cl::Positional, cl::Required,
                                     cl::desc("<file.gguf>"), cl::sub(DumpCmd));

static cl::SubCommand DataCmd("data", "Check and hash one tensor's data");
static cl::opt<std::string> DataFile(cl::Positional, cl::Required,
                                     cl::desc("<file.gguf>"), cl::sub(DataCmd));
static cl::opt<std::string> DataTensor(cl::Positional, cl::Required,
                                       cl::desc("<tensor>"), cl::sub(DataCmd));
static cl::opt<bool> AnyType("any-type",
                             cl::desc("Accept types moe does not use"),
                             cl::sub(DataCmd));

static int fail(Error e) {
  WithColor::error(errs(), "moe-gguf") << toString(std::move(e)) << "\n";
  return 1;
}

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  cl::ParseCommandLineOptions(argc, argv, "moe-gguf: inspect GGUF files\n");

  if (DumpCmd) {
    Expected<std::unique_ptr<GgufFile>> file = GgufFile::open(DumpFile);
    if (!file)
      return fail(file.takeError());
    dump(outs(), **file);
    return 0;
  }
  if (DataCmd) {
    Expected<std::unique_ptr<GgufFile>> file = GgufFile::open(DataFile);
    if (!file)
      return fail(file.takeError());
    Expected<ArrayRef<uint8_t>> data =
        (*file)->tensorData(DataTensor, /*requireSupported=*/!AnyType);
    if (!data)
      return fail(data.takeError());
    const TensorInfo &t = *(*file)->findTensor(DataTensor);
    outs() << t.name << ": " << t.typeName() << ", " << data->size()
           << " bytes at file offset "
           << (data->data() - (*file)->bytes().data()) << ", xxh3 "
           << format_hex(xxh3_64bits(*data), 18) << "\n";
    return 0;
  }
  errs() << "moe-gguf: expected a command: dump or data (see --help)\n";
  return 1;
}
