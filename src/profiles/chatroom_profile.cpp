#include "ringcast/profiles/chatroom_profile.h"

#include <ctime>

#include "ringcast/hub/formatter_names.h"
#include "ringcast/profiles/chatroom_names.h"
#include "ringcast/profiles/display_name.h"
#include "ringcast/profiles/json_frame.h"
#include "ringcast/websocket/close_code.h"
#include "ringcast/websocket/frame_encoder.h"

namespace ringcast::profiles {

using websocket::Session;

namespace {

constexpr std::string_view kTextCommands = "!help, !about, !setname, !who, !env, !ping";
constexpr std::string_view kJsonCommands = "!help, !about, !setname, !who, !env, !ping, !pm";
constexpr std::string_view kAbout =
    "This is a websocket-based, in-memory, chatroom created by Rafi Bayer (github.com/rafibayer)";
constexpr std::string_view kGoodbye = "Server is shutting down... goodbye.";

struct ChatState {
  std::string name;
};

ChatState* state_of(Session& s) {
  return static_cast<ChatState*>(s.user);
}

// ---- text as the seed's Python sees it
// ------------------------------------------------------------

// Byte length of the code point at s[i] if Python's str.isspace() holds for it, else 0.
size_t space_at(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return i + k < s.size() ? static_cast<uint8_t>(s[i + k]) : 0; };
  uint8_t c = b(0);
  if (c < 0x80) return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) ? 1 : 0;
  if (c == 0xC2) return b(1) == 0x85 || b(1) == 0xA0 ? 2 : 0;  // U+0085, U+00A0
  if (c == 0xE1) return b(1) == 0x9A && b(2) == 0x80 ? 3 : 0;  // U+1680
  if (c == 0xE2) {
    if (b(1) == 0x80) {
      uint8_t d = b(2);  // U+2000..U+200A, U+2028, U+2029, U+202F
      return (d >= 0x80 && d <= 0x8A) || d == 0xA8 || d == 0xA9 || d == 0xAF ? 3 : 0;
    }
    return b(1) == 0x81 && b(2) == 0x9F ? 3 : 0;  // U+205F
  }
  if (c == 0xE3) return b(1) == 0x80 && b(2) == 0x80 ? 3 : 0;  // U+3000
  return 0;
}

// str.strip()
std::string_view strip(std::string_view s) {
  size_t n;
  while (!s.empty() && (n = space_at(s, 0)) > 0) s.remove_prefix(n);
  while (!s.empty()) {
    size_t j = s.size() - 1;
    while (j > 0 && (static_cast<uint8_t>(s[j]) & 0xC0) == 0x80) --j;
    if (space_at(s, j) != s.size() - j) break;
    s.remove_suffix(s.size() - j);
  }
  return s;
}

std::string_view skip_space(std::string_view s) {
  size_t n;
  while (!s.empty() && (n = space_at(s, 0)) > 0) s.remove_prefix(n);
  return s;
}

// The first whitespace-separated token of s (s starts with no whitespace); `rest` is what follows
// it, leading whitespace removed (str.split(maxsplit=1)).
std::string_view first_token(std::string_view s, std::string_view* rest) {
  size_t i = 0;
  while (i < s.size() && space_at(s, i) == 0) ++i;
  if (rest) *rest = skip_space(s.substr(i));
  return s.substr(0, i);
}

// "".join(s.split())
std::string without_spaces(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t n = space_at(s, i);
    if (n) {
      i += n;
    } else {
      out.push_back(s[i++]);
    }
  }
  return out;
}

// The first `max` code points of s (s is valid UTF-8).
std::string_view cut(std::string_view s, size_t max) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<uint8_t>(s[i]) & 0xC0) == 0x80) continue;
    if (n == max) return s.substr(0, i);
    ++n;
  }
  return s;
}

// `^!.+` (re.match): a '!' and at least one more character that is not a newline.
bool is_command(std::string_view s) {
  return s.size() >= 2 && s[0] == '!' && s[1] != '\n';
}

// str.lower() for matching command words: every registered command is ASCII, and no non-ASCII
// character lowers to one of their letters.
// `"<text>" is not a valid command (<why>)`. Appended piece by piece: `"\"" + std::string(..)`
// makes GCC 12 at -O3 report a false -Wrestrict overlap inside std::string.
std::string not_a_command(std::string_view text, std::string_view why) {
  std::string out;
  out.reserve(text.size() + why.size() + 28);
  out.append("\"").append(text).append("\" is not a valid command (").append(why).append(")");
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// ---- frames -------------------------------------------------------------------------------------

// "MM/DD/YYYY, HH:MM:SS", server local time; formatted once per second per thread.
std::string_view sent_at() {
  thread_local time_t last = -1;
  thread_local char buf[32];
  thread_local size_t len = 0;
  time_t now = time(nullptr);
  if (now != last) {
    tm t{};
    localtime_r(&now, &t);
    len = strftime(buf, sizeof buf, "%m/%d/%Y, %H:%M:%S", &t);
    last = now;
  }
  return {buf, len};
}

engine::SharedFrame* json_frame(std::string_view body, std::string_view origin) {
  JsonFrame j;
  j.w().StartObject();
  j.kv("body", body);
  j.kv("origin", origin);
  j.kv("sentAt", sent_at());
  j.w().EndObject();
  return j.frame();
}

// A frame in the variant's shape (origin is ignored by the text version).
engine::SharedFrame* make_frame(ChatroomProfile::Variant v, std::string_view body,
                                std::string_view origin = "SERVER") {
  if (v == ChatroomProfile::Variant::kText)
    return websocket::encode_frame(websocket::Opcode::kText, body);
  return json_frame(body, origin);
}

// Chat fan-out (on the home core): the published bytes are the whole line "<name>: <message>".
engine::SharedFrame* text_chat(const hub::SharedRoom&, const hub::HistoryRecord& rec) {
  return websocket::encode_frame(websocket::Opcode::kText, rec.data());
}

engine::SharedFrame* json_chat(const hub::SharedRoom&, const hub::HistoryRecord& rec) {
  return json_frame(rec.data(), "USER");
}

std::string presence_line(const hub::PresenceEntry& who, bool joined) {
  std::string line = who.identity.nickname;
  line += joined ? " has connected!" : " has disconnected!";
  return line;
}

engine::SharedFrame* text_presence(const hub::SharedRoom&, const hub::PresenceEntry& who,
                                   bool joined) {
  return make_frame(ChatroomProfile::Variant::kText, presence_line(who, joined));
}

engine::SharedFrame* json_presence(const hub::SharedRoom&, const hub::PresenceEntry& who,
                                   bool joined) {
  return make_frame(ChatroomProfile::Variant::kJson, presence_line(who, joined));
}

// Cluster nodes format each other's events by these names (hub/formatter_names.h).
const bool kFormattersNamed = [] {
  hub::name_formatter(text_chat, "chatroom.text");
  hub::name_formatter(json_chat, "chatroom.json");
  hub::name_formatter(text_presence, "chatroom.text.presence");
  hub::name_formatter(json_presence, "chatroom.json.presence");
  return true;
}();

}  // namespace

ChatroomProfile::ChatroomProfile(hub::HubSystem& hubs, Variant variant, std::string env,
                                 size_t max_chars)
    : hubs_(hubs), variant_(variant), env_(std::move(env)), max_chars_(max_chars) {
  auto& reg = hubs_.rooms();
  room_ =
      hub::RoomRef(&reg, reg.acquire(variant_ == Variant::kText ? kTextRoom : kJsonRoom, false));
}

void ChatroomProfile::on_open(Session& s, const websocket::HttpRequest&) {
  auto* st = new ChatState{chatroom_random_name()};
  s.user = st;
  hub::JoinOptions opts;
  opts.presence = true;  // connect/disconnect notices and name changes
  opts.member_list = false;
  opts.presence_events = variant_ == Variant::kText ? text_presence : json_presence;
  opts.identity.nickname = st->name;
  // The greeting goes out once the join is in effect: whatever the session is sent next (its own
  // replies included) comes after it.
  std::string greeting = "Welcome, " + st->name + " (hint: type \"!help\" for help)";
  hubs_.hub_of(s).join(s, room_->name(), std::move(opts),
                       [v = variant_, greeting](Session& js, hub::JoinResult&) {
                         engine::FrameRef f(make_frame(v, greeting));
                         js.send_frame(f.get());
                       });
}

void ChatroomProfile::on_close(Session& s) {
  ChatState* st = state_of(s);
  if (!st) return;
  hubs_.hub_of(s).session_closed(s);  // the home core tells the others "<name> has disconnected!"
  delete st;
  s.user = nullptr;
}

void ChatroomProfile::on_shutdown(Session& s) {
  engine::FrameRef f(make_frame(variant_, kGoodbye));
  s.send_frame(f.get());
}

void ChatroomProfile::send_ordered(Session& s, engine::FrameRef frame) {
  hubs_.hub_of(s).post_fn(room_->home(), [frame = std::move(frame), id = s.id()](hub::Hub& home) {
    home.send_to(id, frame.get());
  });
}

// Everything a chatroom message causes goes through the room's home core (chat, commands and their
// replies, renames), in the order the messages came: a message behind a chat line still waiting
// for its SELF copy is ordered behind it anyway, so it need not wait.
const void* ChatroomProfile::order_key(Session&, websocket::Opcode op, std::span<const uint8_t>) {
  return op == websocket::Opcode::kText ? room_.get() : nullptr;
}

void ChatroomProfile::reply(Session& s, std::string_view body) {
  send_ordered(s, engine::FrameRef(make_frame(variant_, body)));
}

void ChatroomProfile::on_message(Session& s, websocket::Opcode op, std::span<uint8_t> payload) {
  ChatState* st = state_of(s);
  if (!st) return;
  if (op != websocket::Opcode::kText) {
    s.close(websocket::kCloseUnsupportedData, "text messages only");
    return;
  }
  std::string_view text =
      cut({reinterpret_cast<const char*>(payload.data()), payload.size()}, max_chars_);
  if (is_command(text)) {
    command(s, text);
    return;
  }
  // Chat: "<name>: <message>" to everyone else; in the JSON version the sender then gets it back.
  thread_local std::string line;
  line.assign(st->name).append(": ").append(text);
  std::span<const uint8_t> bytes{reinterpret_cast<const uint8_t*>(line.data()), line.size()};
  hub::Hub& hub = hubs_.hub_of(s);
  if (variant_ == Variant::kText) {
    hub.publish(s, room_.get(), bytes, {}, text_chat, false, false);
  } else {
    engine::FrameRef self(json_frame(line, "SELF"));
    hub.publish(s, room_.get(), bytes, {}, json_chat, false, false, self.get());
  }
}

void ChatroomProfile::command(Session& s, std::string_view text) {
  std::string_view stripped = strip(text);
  if (!is_command(stripped)) {
    reply(s, not_a_command(stripped, "Syntax"));
    return;
  }
  // The seed version lower-cases the command word and splits the arguments into tokens; the JSON
  // version keeps a lone word as typed and the arguments as one string.
  std::string_view args;
  std::string_view word = first_token(stripped, &args);
  std::string name = variant_ == Variant::kJson && args.empty() ? std::string(word) : lower(word);
  const bool json = variant_ == Variant::kJson;
  if (name == "!help") {
    reply(s, std::string("Here are some commands you can use:\n\t")
                 .append(json ? kJsonCommands : kTextCommands));
  } else if (name == "!about") {
    reply(s, kAbout);
  } else if (name == "!setname") {
    std::string next = without_spaces(args);  // tokens glued / whitespace removed: the same
    if (next.empty()) {
      reply(s, json ? "!setname usage: \"!setname <new name>\""
                    : "!setname usage is \"!setname <new name>\"");
      return;
    }
    // Everyone is shown the name (notices, !who, chat lines): no control or bidi characters.
    if (!is_display_safe(next)) {
      reply(s, "!setname error: a name " + std::string(kDisplayNameRule));
      return;
    }
    set_name(s, std::move(next));
  } else if (name == "!who") {
    hubs_.hub_of(s).post_fn(room_->home(),
                            [room = room_.get(), v = variant_, id = s.id()](hub::Hub& home) {
                              std::string body = "Connected Users: ";
                              bool first = true;
                              for (const auto& m : room->presence()) {
                                if (!first) body += ", ";
                                body += m.identity.nickname;
                                first = false;
                              }
                              engine::FrameRef f(make_frame(v, body));
                              home.send_to(id, f.get());
                            });
  } else if (name == "!env") {
    reply(s, "Enviornment: " + env_);
  } else if (name == "!ping") {
    reply(s, "pong!");
  } else if (json && name == "!pm") {
    private_message(s, args);
  } else {
    reply(s, not_a_command(stripped, "Doesn't exist"));
  }
}

void ChatroomProfile::set_name(Session& s, std::string name) {
  ChatState* st = state_of(s);
  std::string notice = "\"" + st->name + "\" has changed their name to \"" + name + "\"";
  st->name = std::move(name);
  hub::Identity id;
  id.nickname = st->name;
  // Everyone, the sender included, from the home core: in order with chat and presence.
  engine::FrameRef f(make_frame(variant_, notice));
  hubs_.hub_of(s).set_identity(s, room_.get(), std::move(id), f.get());
}

void ChatroomProfile::private_message(Session& s, std::string_view args) {
  std::string_view message;
  std::string_view target = first_token(args, &message);
  if (target.empty() || message.empty()) {
    reply(s, "!pm usage: !pm <user> <message>");
    return;
  }
  // The target is the first user with exactly that name, in connection order (on the home core).
  hubs_.hub_of(s).post_fn(room_->home(), [room = room_.get(), id = s.id(), from = state_of(s)->name,
                                          target = std::string(target),
                                          message = std::string(message)](hub::Hub& home) {
    for (const auto& m : room->presence()) {
      if (m.identity.nickname != target) continue;
      engine::FrameRef in(json_frame("PM <- " + from + ": " + message, "PRIVATE"));
      home.send_to(m.session, in.get());
      engine::FrameRef out(json_frame("PM -> " + target + ": " + message, "PRIVATE"));
      home.send_to(id, out.get());
      return;
    }
    engine::FrameRef f(json_frame("!pm error: user " + target + " not found", "SERVER"));
    home.send_to(id, f.get());
  });
}

}  // namespace ringcast::profiles
