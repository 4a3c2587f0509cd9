#include "ringcast/profiles/chatroom_names.h"

#include <array>
#include <random>

namespace ringcast::profiles {

namespace {

constexpr std::array<std::string_view, 128> kAdjectives = {
    "Adventurous",   "Agile",    "Amiable",      "Ancient",      "Bashful",     "Big-hearted",
    "Blue-eyed",     "Bold",     "Bouncy",       "Brave",        "Breezy",      "Bright",
    "Brisk",         "Bubbly",   "Calm",         "Carefree",     "Cheerful",    "Clever",
    "Cold-blooded",  "Cosmic",   "Courageous",   "Cozy",         "Crafty",      "Curious",
    "Daring",        "Dazzling", "Dapper",       "Dreamy",       "Eager",       "Easy-going",
    "Electric",      "Elegant",  "Energetic",    "Fancy",        "Fearless",    "Feisty",
    "Fierce",        "Fluffy",   "Friendly",     "Frosty",       "Fuzzy",       "Gentle",
    "Giant",         "Giddy",    "Gleaming",     "Glorious",     "Golden",      "Good-natured",
    "Graceful",      "Grumpy",   "Happy",        "Hardy",        "Hasty",       "Hidden",
    "Honest",        "Hopeful",  "Humble",       "Hungry",       "Icy",         "Jolly",
    "Jovial",        "Keen",     "Kind",         "Kind-hearted", "Lazy",        "Light-footed",
    "Lively",        "Lonely",   "Loyal",        "Lucky",        "Magnificent", "Mellow",
    "Merry",         "Mighty",   "Mysterious",   "Nimble",       "Noble",       "Odd",
    "Old-fashioned", "Patient",  "Peaceful",     "Plucky",       "Polite",      "Proud",
    "Purple",        "Quick",    "Quick-witted", "Quiet",        "Quirky",      "Radiant",
    "Rapid",         "Rowdy",    "Royal",        "Rusty",        "Scarlet",     "Serene",
    "Shiny",         "Shy",      "Silent",       "Silly",        "Sleepy",      "Slow",
    "Sly",           "Smart",    "Sneaky",       "Snowy",        "Soft-spoken", "Sparkling",
    "Speedy",        "Spotted",  "Steady",       "Stormy",       "Striped",     "Sunny",
    "Swift",         "Tall",     "Tiny",         "Tireless",     "Tough",       "Tranquil",
    "Velvet",        "Vivid",    "Warm-hearted", "Wild",         "Wise",        "Witty",
    "Zany",          "Zealous",
};

constexpr std::array<std::string_view, 128> kAnimals = {
    "Aardvark",  "Albatross",   "Alligator", "Alpaca",     "Antelope",    "Armadillo",
    "Axolotl",   "Badger",      "Barracuda", "Bat",        "Bear",        "Beaver",
    "Bison",     "Bobcat",      "Buffalo",   "Butterfly",  "Camel",       "Capybara",
    "Caribou",   "Cat",         "Chameleon", "Cheetah",    "Chinchilla",  "Chipmunk",
    "Cobra",     "Condor",      "Cougar",    "Coyote",     "Crab",        "Crane",
    "Crocodile", "Crow",        "Deer",      "Dingo",      "Dolphin",     "Donkey",
    "Dove",      "Dragonfly",   "Duck",      "Eagle",      "Eel",         "Elephant",
    "Elk",       "Emu",         "Falcon",    "Ferret",     "Finch",       "Flamingo",
    "Fox",       "Frog",        "Gazelle",   "Gecko",      "Gerbil",      "Giraffe",
    "Goat",      "Goose",       "Gopher",    "Gorilla",    "Grasshopper", "Hamster",
    "Hare",      "Hawk",        "Hedgehog",  "Heron",      "Hippo",       "Hornet",
    "Horse",     "Hummingbird", "Hyena",     "Ibex",       "Iguana",      "Impala",
    "Jackal",    "Jaguar",      "Jellyfish", "Kangaroo",   "Kingfisher",  "Koala",
    "Lemur",     "Leopard",     "Lion",      "Llama",      "Lobster",     "Lynx",
    "Macaw",     "Magpie",      "Manatee",   "Meerkat",    "Mink",        "Mole",
    "Mongoose",  "Moose",       "Narwhal",   "Newt",       "Nightingale", "Ocelot",
    "Octopus",   "Opossum",     "Orca",      "Ostrich",    "Otter",       "Owl",
    "Panda",     "Panther",     "Parrot",    "Peacock",    "Pelican",     "Penguin",
    "Pigeon",    "Platypus",    "Puffin",    "Puma",       "Quail",       "Rabbit",
    "Raccoon",   "Raven",       "Reindeer",  "Salamander", "Seal",        "Shark",
    "Sloth",     "Sparrow",     "Squirrel",  "Swan",       "Tiger",       "Toucan",
    "Turtle",    "Walrus",
};

}  // namespace

std::span<const std::string_view> chatroom_adjectives() {
  return kAdjectives;
}

std::span<const std::string_view> chatroom_animals() {
  return kAnimals;
}

std::string chatroom_random_name() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_int_distribution<size_t> adj(0, kAdjectives.size() - 1);
  std::uniform_int_distribution<size_t> animal(0, kAnimals.size() - 1);
  std::string_view a = kAdjectives[adj(rng)];
  std::string_view b = kAnimals[animal(rng)];
  std::string name;
  name.reserve(a.size() + b.size());
  name.append(a).append(b);
  return name;
}

}  // namespace ringcast::profiles
