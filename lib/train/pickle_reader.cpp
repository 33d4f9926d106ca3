#include "lib/train/pickle_reader.hpp"

#include <ATen/ops/empty.h>
#include <caffe2/serialize/inline_container.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cstring>
#include <fstream>
#include <unordered_map>

#include "lib/util/error.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::train {

namespace fs = std::filesystem;
using Ref = std::shared_ptr<PickleValue>;

const PickleValue* PickleValue::get(const std::string& key) const {
  if (kind != Kind::dict) {
    return nullptr;
  }
  for (const auto& [k, v] : entries) {
    if (k->kind == Kind::string && k->text == key) {
      return v.get();
    }
  }
  return nullptr;
}

namespace {

Ref make(PickleValue::Kind kind) {
  auto value = std::make_shared<PickleValue>();
  value->kind = kind;
  return value;
}

Ref make_text(PickleValue::Kind kind, std::string text) {
  Ref value = make(kind);
  value->text = std::move(text);
  return value;
}

at::ScalarType storage_dtype(const std::string& storage_class) {
  static const std::unordered_map<std::string, at::ScalarType> types = {
      {"torch.FloatStorage", at::kFloat},  {"torch.DoubleStorage", at::kDouble},
      {"torch.HalfStorage", at::kHalf},    {"torch.BFloat16Storage", at::kBFloat16},
      {"torch.LongStorage", at::kLong},    {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort},  {"torch.CharStorage", at::kChar},
      {"torch.ByteStorage", at::kByte},    {"torch.BoolStorage", at::kBool},
      {"torch.UntypedStorage", at::kByte},
  };
  auto found = types.find(storage_class);
  if (found == types.end()) {
    throw std::runtime_error("unsupported storage type " + storage_class);
  }
  return found->second;
}

// A pickle virtual machine for the opcodes of protocols 2 to 5 that torch.save
// and torch::pickle_save emit. Errors are std::runtime_error; the caller adds
// the file's name.
class Unpickler {
 public:
  Unpickler(std::string_view data, caffe2::serialize::PyTorchStreamReader& reader)
      : m_data(data), m_reader(reader) {}

  Ref run() {
    while (true) {
      std::uint8_t op = byte();
      switch (op) {
        case 0x80:  // PROTO
          byte();
          break;
        case 0x95:  // FRAME
          bytes(8);
          break;
        case '.':  // STOP
          return pop();
        case '(':  // MARK
          m_marks.push_back(m_stack.size());
          break;
        case '0':  // POP
          pop();
          break;
        case '1':  // POP_MARK
          pop_mark();
          break;
        case '2':  // DUP
          push(top());
          break;
        case 'N':
          push(make(PickleValue::Kind::none));
          break;
        case 0x88:
        case 0x89: {  // NEWTRUE, NEWFALSE
          Ref value = make(PickleValue::Kind::boolean);
          value->boolean = op == 0x88;
          push(value);
          break;
        }
        case 'J':
          push_integer(static_cast<std::int32_t>(little(4)));
          break;
        case 'K':
          push_integer(static_cast<std::int64_t>(little(1)));
          break;
        case 'M':
          push_integer(static_cast<std::int64_t>(little(2)));
          break;
        case 0x8A:  // LONG1
          push_long(little(1));
          break;
        case 0x8B:  // LONG4
          push_long(little(4));
          break;
        case 'G': {  // BINFLOAT, big-endian
          std::uint64_t bits = 0;
          for (std::uint8_t b : bytes(8)) {
            bits = (bits << 8) | b;
          }
          Ref value = make(PickleValue::Kind::floating);
          std::memcpy(&value->floating, &bits, sizeof(double));
          push(value);
          break;
        }
        case 'X':  // BINUNICODE
          push_text(PickleValue::Kind::string, little(4));
          break;
        case 0x8C:  // SHORT_BINUNICODE
          push_text(PickleValue::Kind::string, little(1));
          break;
        case 0x8D:  // BINUNICODE8
          push_text(PickleValue::Kind::string, little(8));
          break;
        case 'T':  // BINSTRING (Python 2 str)
          push_text(PickleValue::Kind::string, little(4));
          break;
        case 'U':  // SHORT_BINSTRING
          push_text(PickleValue::Kind::string, little(1));
          break;
        case 'B':  // BINBYTES
          push_text(PickleValue::Kind::bytes, little(4));
          break;
        case 'C':  // SHORT_BINBYTES
          push_text(PickleValue::Kind::bytes, little(1));
          break;
        case 0x8E:  // BINBYTES8
          push_text(PickleValue::Kind::bytes, little(8));
          break;
        case ']':  // EMPTY_LIST
          push(make(PickleValue::Kind::list));
          break;
        case 'l': {  // LIST
          Ref list = make(PickleValue::Kind::list);
          list->items = pop_mark();
          push(list);
          break;
        }
        case 'a': {  // APPEND
          Ref item = pop();
          expect(top(), PickleValue::Kind::list, "APPEND")->items.push_back(item);
          break;
        }
        case 'e': {  // APPENDS
          std::vector<Ref> items = pop_mark();
          Ref list = expect(top(), PickleValue::Kind::list, "APPENDS");
          list->items.insert(list->items.end(), items.begin(), items.end());
          break;
        }
        case ')':
          push(make(PickleValue::Kind::tuple));
          break;
        case 't': {
          Ref tuple = make(PickleValue::Kind::tuple);
          tuple->items = pop_mark();
          push(tuple);
          break;
        }
        case 0x85:
        case 0x86:
        case 0x87: {  // TUPLE1..3
          Ref tuple = make(PickleValue::Kind::tuple);
          std::size_t n = op - 0x84u;
          if (m_stack.size() < n) {
            throw std::runtime_error("pickle stack underflow");
          }
          tuple->items.assign(m_stack.end() - static_cast<std::ptrdiff_t>(n), m_stack.end());
          m_stack.resize(m_stack.size() - n);
          push(tuple);
          break;
        }
        case '}':
          push(make(PickleValue::Kind::dict));
          break;
        case 'd': {  // DICT
          Ref dict = make(PickleValue::Kind::dict);
          set_items(dict, pop_mark());
          push(dict);
          break;
        }
        case 's': {  // SETITEM
          Ref value = pop();
          Ref key = pop();
          set_items(expect(top(), PickleValue::Kind::dict, "SETITEM"), {key, value});
          break;
        }
        case 'u': {  // SETITEMS
          std::vector<Ref> items = pop_mark();
          set_items(expect(top(), PickleValue::Kind::dict, "SETITEMS"), items);
          break;
        }
        case 'c': {  // GLOBAL module\nname\n
          std::string module = line();
          std::string name = line();
          push(make_text(PickleValue::Kind::global, module + "." + name));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          Ref name = pop();
          Ref module = pop();
          push(make_text(PickleValue::Kind::global, module->text + "." + name->text));
          break;
        }
        case 'R': {  // REDUCE
          Ref args = pop();
          Ref callable = pop();
          push(reduce(callable, args));
          break;
        }
        case 0x81: {  // NEWOBJ
          Ref args = pop();
          Ref cls = pop();
          push(reduce(cls, args));
          break;
        }
        case 'b':  // BUILD: the object's state (an OrderedDict's _metadata) is not needed
          pop();
          break;
        case 'Q':  // BINPERSID
          push(persistent_load(pop()));
          break;
        case 'h':
          push(memo_get(little(1)));
          break;
        case 'j':
          push(memo_get(little(4)));
          break;
        case 'q':
          m_memo[little(1)] = top();
          break;
        case 'r':
          m_memo[little(4)] = top();
          break;
        case 0x94:  // MEMOIZE
          m_memo[m_memo.size()] = top();
          break;
        default:
          throw std::runtime_error(fmt::format("unsupported pickle opcode 0x{:02x}", op));
      }
    }
  }

 private:
  std::uint8_t byte() {
    if (m_position >= m_data.size()) {
      throw std::runtime_error("pickle data ends early");
    }
    return static_cast<std::uint8_t>(m_data[m_position++]);
  }

  std::string_view bytes(std::uint64_t n) {
    if (n > m_data.size() - m_position) {
      throw std::runtime_error("pickle data ends early");
    }
    std::string_view out = m_data.substr(m_position, n);
    m_position += n;
    return out;
  }

  std::uint64_t little(int n) {
    std::uint64_t value = 0;
    std::string_view raw = bytes(static_cast<std::uint64_t>(n));
    for (int i = n - 1; i >= 0; --i) {
      value = (value << 8) | static_cast<std::uint8_t>(raw[i]);
    }
    return value;
  }

  std::string line() {
    std::size_t end = m_data.find('\n', m_position);
    if (end == std::string_view::npos) {
      throw std::runtime_error("pickle data ends early");
    }
    std::string out(m_data.substr(m_position, end - m_position));
    m_position = end + 1;
    return out;
  }

  void push(Ref value) { m_stack.push_back(std::move(value)); }

  Ref top() {
    if (m_stack.empty()) {
      throw std::runtime_error("pickle stack underflow");
    }
    return m_stack.back();
  }

  Ref pop() {
    Ref value = top();
    m_stack.pop_back();
    return value;
  }

  std::vector<Ref> pop_mark() {
    if (m_marks.empty()) {
      throw std::runtime_error("pickle MARK missing");
    }
    std::size_t mark = m_marks.back();
    m_marks.pop_back();
    std::vector<Ref> items(m_stack.begin() + static_cast<std::ptrdiff_t>(mark), m_stack.end());
    m_stack.resize(mark);
    return items;
  }

  static Ref expect(Ref value, PickleValue::Kind kind, const char* opcode) {
    if (value->kind != kind) {
      throw std::runtime_error(fmt::format("pickle {} on an unexpected object", opcode));
    }
    return value;
  }

  void push_integer(std::int64_t value) {
    Ref ref = make(PickleValue::Kind::integer);
    ref->integer = value;
    push(ref);
  }

  void push_long(std::uint64_t length) {
    if (length > 8) {
      throw std::runtime_error("integer wider than 64 bits");
    }
    std::string_view raw = bytes(length);
    std::uint64_t value = 0;
    for (std::size_t i = length; i-- > 0;) {
      value = (value << 8) | static_cast<std::uint8_t>(raw[i]);
    }
    // Sign-extend two's complement.
    if (length > 0 && length < 8 && (static_cast<std::uint8_t>(raw[length - 1]) & 0x80)) {
      value |= ~std::uint64_t{0} << (8 * length);
    }
    push_integer(static_cast<std::int64_t>(value));
  }

  void push_text(PickleValue::Kind kind, std::uint64_t length) {
    push(make_text(kind, std::string(bytes(length))));
  }

  Ref memo_get(std::uint64_t key) {
    auto found = m_memo.find(key);
    if (found == m_memo.end()) {
      throw std::runtime_error("pickle memo entry missing");
    }
    return found->second;
  }

  static void set_items(const Ref& dict, const std::vector<Ref>& items) {
    if (items.size() % 2 != 0) {
      throw std::runtime_error("pickle dict with an odd number of items");
    }
    for (std::size_t i = 0; i < items.size(); i += 2) {
      dict->entries.emplace_back(items[i], items[i + 1]);
    }
  }

  static const Ref& argument(const Ref& args, std::size_t index, const std::string& callable) {
    if (args->kind != PickleValue::Kind::tuple || args->items.size() <= index) {
      throw std::runtime_error("bad arguments to " + callable);
    }
    return args->items[index];
  }

  static std::vector<std::int64_t> integers(const Ref& tuple) {
    std::vector<std::int64_t> out;
    for (const Ref& item : tuple->items) {
      if (item->kind != PickleValue::Kind::integer) {
        throw std::runtime_error("tensor size or stride is not an integer");
      }
      out.push_back(item->integer);
    }
    return out;
  }

  Ref reduce(const Ref& callable, const Ref& args) {
    const std::string name = callable->kind == PickleValue::Kind::global ? callable->text : "";
    if (name == "collections.OrderedDict" || name == "builtins.dict") {
      return make(PickleValue::Kind::dict);
    }
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      const Ref& storage = argument(args, 0, name);
      if (storage->kind != PickleValue::Kind::tensor) {
        throw std::runtime_error("tensor without storage");
      }
      std::int64_t offset = argument(args, 1, name)->integer;
      std::vector<std::int64_t> size = integers(argument(args, 2, name));
      std::vector<std::int64_t> stride = integers(argument(args, 3, name));
      // as_strided checks the view against the storage's size.
      Ref tensor = make(PickleValue::Kind::tensor);
      tensor->tensor = storage->tensor.as_strided(size, stride, offset);
      return tensor;
    }
    if (name == "torch._utils._rebuild_parameter" ||
        name == "torch._utils._rebuild_parameter_with_state" ||
        name == "torch.jit._pickle.restore_type_tag" || name == "torch.jit._pickle.build_intlist" ||
        name == "torch.jit._pickle.build_tensorlist" ||
        name == "torch.jit._pickle.build_doublelist" ||
        name == "torch.jit._pickle.build_boollist") {
      return argument(args, 0, name);
    }
    // Anything else becomes an opaque object; it is an error only if it ends
    // up where a tensor or a plain value is needed.
    return make_text(PickleValue::Kind::object, name.empty() ? "<object>" : name);
  }

  Ref persistent_load(const Ref& id) {
    // ('storage', torch.FloatStorage, key, location, numel)
    if (id->kind != PickleValue::Kind::tuple || id->items.size() < 5 ||
        id->items[0]->text != "storage") {
      throw std::runtime_error("unsupported persistent object");
    }
    const std::string& key = id->items[2]->text;
    auto cached = m_storages.find(key);
    if (cached != m_storages.end()) {
      return cached->second;
    }
    at::ScalarType dtype = storage_dtype(id->items[1]->text);
    std::int64_t numel = id->items[4]->integer;
    auto [data, size] = m_reader.getRecord("data/" + key);
    at::Tensor storage = at::empty({numel}, at::TensorOptions().dtype(dtype));
    if (size != static_cast<std::size_t>(numel) * storage.element_size()) {
      throw std::runtime_error(fmt::format("storage {} has {} bytes, expected {}", key, size,
                                           numel * storage.element_size()));
    }
    std::memcpy(storage.data_ptr(), data.get(), size);
    Ref value = make(PickleValue::Kind::tensor);
    value->tensor = storage;
    m_storages.emplace(key, value);
    return value;
  }

  std::string_view m_data;
  std::size_t m_position = 0;
  caffe2::serialize::PyTorchStreamReader& m_reader;
  std::vector<Ref> m_stack;
  std::vector<std::size_t> m_marks;
  std::unordered_map<std::uint64_t, Ref> m_memo;
  std::unordered_map<std::string, Ref> m_storages;
};

std::string first_bytes(const fs::path& path, std::size_t count) {
  std::ifstream in(path, std::ios::binary);
  std::string out(count, '\0');
  in.read(out.data(), static_cast<std::streamsize>(count));
  out.resize(static_cast<std::size_t>(in.gcount()));
  return out;
}

}  // namespace

Ref read_torch_file(const fs::path& path, const std::string& what) {
  std::error_code error;
  auto status = fs::status(path, error);
  if (!fs::exists(status)) {
    throw util::InputError(fmt::format("{}: no such file", what));
  }
  if (!fs::is_regular_file(status)) {
    throw util::InputError(fmt::format("{}: not a file", what));
  }
  if (::access(path.c_str(), R_OK) != 0) {
    throw util::InputError(util::errno_message(what + ": cannot read", errno));
  }
  std::string head = first_bytes(path, 4);
  if (head.size() >= 2 && static_cast<unsigned char>(head[0]) == 0x80) {
    throw util::InputError(fmt::format(
        "{}: saved in PyTorch's legacy format (before 1.6); load it in Python and save it again "
        "with torch.save(state_dict, path)",
        what));
  }
  if (head.rfind("PK\x03\x04", 0) != 0) {
    throw util::InputError(
        fmt::format("{}: not a PyTorch file (torch.save writes a zip archive)", what));
  }
  try {
    caffe2::serialize::PyTorchStreamReader reader(path.string());
    if (reader.hasRecord("constants.pkl") || reader.hasRecord("code/__torch__.py")) {
      throw util::InputError(fmt::format(
          "{}: a TorchScript or C++ module archive, not a state dict; pass a file written by "
          "torch.save(model.state_dict(), path), or a model folder",
          what));
    }
    if (reader.hasRecord("byteorder")) {
      auto [order, order_size] = reader.getRecord("byteorder");
      std::string text(static_cast<const char*>(order.get()), order_size);
      if (text != "little") {
        throw util::InputError(fmt::format("{}: saved on a {}-endian machine", what, text));
      }
    }
    if (!reader.hasRecord("data.pkl")) {
      throw util::InputError(fmt::format("{}: not a torch.save file (no data.pkl)", what));
    }
    auto [data, size] = reader.getRecord("data.pkl");
    Unpickler unpickler(std::string_view(static_cast<const char*>(data.get()), size), reader);
    return unpickler.run();
  } catch (const util::Error&) {
    throw;
  } catch (const std::exception& failure) {
    // c10::Error's what() carries a C++ backtrace; the first line is the message.
    std::string message = failure.what();
    message = message.substr(0, message.find('\n'));
    throw util::InputError(fmt::format("{}: cannot read: {}", what, message));
  }
}

}  // namespace amlrun::train
