"""Injuries told in a patient's own words: the injury (nature, site, side) and its external cause.

A lay account says how it happened ("a dog bit my right hand", "I was cycling and a car ran over
my leg") in words that the tabular list never uses. This module reads such accounts with word
tables and finds the codes in the claim's release by their tabular titles, so that it proposes
only codes that the release bills:

- the external cause (ICD-10-CM chapter 20, V00-Y38): the mechanism, and for a transport accident
  the injured person's role (pedestrian, pedal cyclist, motorcycle rider, car occupant; driver or
  passenger) and the counterpart (car, heavy transport vehicle, fixed object, none);
- the injury itself (chapter 19, S00-T34): a lay nature of injury ("bit", "broke", "burned") and
  a lay body site ("my right hand") looked up in the release's code-text index ("broken glass"
  is no fracture);
- a sting or bite of a venomous animal ("stung by a bee"): its toxic effect, accidental (T63,
  "Toxic effect of venom of bees, accidental (unintentional)"), which names the cause and the
  intent, so no chapter 20 code goes with it (Official Guidelines I.C.20.a.9).

Both get the 7th character of the encounter: A (initial encounter) unless the narrative says it
is a follow-up (D) or a sequela (S); the same character for the injury and its external cause
(Official Guidelines I.C.19.a and I.C.20.a.2). Codes that need one carry the placeholder X
(W54.0XXA; guideline I.A.4), because the release lists them so.

Negated words ("I did not fall") are dropped first (context.py), as for every other code. The
module never logs or returns narrative text.
"""

import itertools
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from drg.codeset.hierarchy import default_child
from drg.codeset.memory import MemoryCodeSet
from worker.coders.retrieval.context import affirmed, read
from worker.coders.retrieval.index import CodeIndex, SeventhCharacter, index_for
from worker.coders.retrieval.scoring import FULL
from worker.coders.retrieval.text import (
    BODY_SITES,
    LONG_BONES,
    SIDES,
    broken_thing,
    contains,
    content_stems,
    sentences,
    sides_before_site,
    words,
)

Words = frozenset[str]

# Chapter 20 (External causes of morbidity) codes this module may propose: accidents, assault
# and events of undetermined intent (V00-Y38). Y90-Y99 are status, place and activity codes.
_CHAPTER_20: Final = ("V00", "Y38")
# Chapter 19 (Injury, poisoning and certain other consequences of external causes): the codes
# an external cause code goes with (guideline I.C.20: secondary to an injury or condition).
_CHAPTER_19: Final = ("S00", "T88")
# The injuries a lay account names and this module looks up: injuries, burns (S00-T34).
_INJURY: Final = ("S00", "T34")
# Words between the parts of an ordered pattern ("fell off the top of a ladder").
_GAP: Final = 8
_HITS: Final = 40  # code texts read per injury query
_NEAR: Final = 10  # words at most between a nature of injury and its site


def _w(text: str) -> Words:
    return frozenset(text.split())


# parts of a bone that are also body sites, and the bones a lay or clinical text names them of
_BONE_PARTS: Final = _w("neck head")
_BONES: Final = _w(
    "femoral femur humeral humerus radial radius ulnar ulna tibial tibia fibular fibula "
    "metacarpal metatarsal"
)


# ---------------------------------------------------------------- lay words

FALL: Final = _w("fell fall falls falling fallen tumbled")
SLIP: Final = _w("slipped slip slipping slips tripped trip tripping trips stumbled stumble")
# "fell asleep", "fell ill", "a fall in haemoglobin", "a fall of blood pressure": no fall
_NOT_A_FALL: Final = _w("asleep ill sick pregnant apart behind")
_DECREASE: Final = (_w("fall falls"), _w("in of"))
# W27.0 "Contact with workbench tool", its inclusion terms: axe, auger, chisel, handsaw,
# screwdriver
WORKBENCH_TOOLS: Final = _w("axe hatchet chisel handsaw screwdriver auger")
# tools whose slip is no fall of the patient ("the knife slipped")
_TOOLS: Final = WORKBENCH_TOOLS | _w("knife knives saw blade razor scissors")
STRIKE: Final = _w("hit hitting struck striking banged bumped smacked")
BURN: Final = _w("burned burnt burn burns scalded scald")  # not "burning": a kind of pain
CUT: Final = _w("cut cutting sliced slashed gashed")
BITE: Final = _w("bit bitten bite bites biting")
STING: Final = _w("stung sting stings stinging")
# "rammed", "gored": how hoof stock strikes (W55.32 "Struck by other hoof stock": "Gored by goat")
KICK: Final = _w("kicked kick struck hit butted trampled knocked stepped headbutted rammed gored")
SCRATCH: Final = _w("scratched scratch clawed")
PECK: Final = _w("pecked peck")
# Lay venomous animals -> the words of their T63 title ("Toxic effect of venom of bees,
# accidental (unintentional)"), with the words that tell their contact: stinging insects sting,
# spiders and centipedes bite, jellyfish sting.
_VENOMOUS: Final[dict[str, tuple[str, Words]]] = {
    **dict.fromkeys(("bee", "bees", "honeybee", "bumblebee"), ("venom of bees", STING)),
    **dict.fromkeys(("wasp", "wasps"), ("venom of wasps", STING)),
    **dict.fromkeys(("hornet", "hornets"), ("venom of hornets", STING)),
    **dict.fromkeys(("ant", "ants"), ("venom of ants", STING | BITE)),
    **dict.fromkeys(("scorpion", "scorpions"), ("venom of scorpion", STING)),
    **dict.fromkeys(("spider", "spiders"), ("unspecified spider venom", BITE)),
    **dict.fromkeys(("jellyfish",), ("contact with other jellyfish", STING)),
}


PERSON: Final = _w("someone somebody man woman guy boy girl person stranger child kid toddler")
FURNITURE: Final = _w("table desk chair dresser couch sofa bed nightstand bookcase cabinet")
OBJECT: Final = _w("wall door counter countertop sink bathtub rock pole edge corner step curb")
FALLING_THINGS: Final = _w(
    "box shelf brick rock branch object tv television weight hammer beam plank crate log"
)

# Lay animal words -> the animal as the tabular list names it in W53-W64 ("Bitten by dog").
_ANIMALS: Final[dict[str, str]] = {
    **dict.fromkeys(("dog", "dogs", "puppy", "pup"), "dog"),
    # a dog told by its breed ("the neighbor's German shepherd bit me"; "pit bull": "pit" is
    # read before "bull")
    **dict.fromkeys(
        (
            *("shepherd", "retriever", "labrador", "rottweiler", "pitbull", "pit", "terrier"),
            *("husky", "poodle", "chihuahua", "beagle", "bulldog", "doberman", "dachshund"),
            *("collie", "corgi", "mastiff", "spaniel", "schnauzer", "pug", "greyhound"),
            *("heeler", "malinois", "hound", "akita"),
        ),
        "dog",
    ),
    **dict.fromkeys(("cat", "cats", "kitten"), "cat"),
    **dict.fromkeys(("horse", "pony", "mare", "stallion"), "horse"),
    **dict.fromkeys(("cow", "bull", "calf", "cattle"), "cow"),
    **dict.fromkeys(("pig", "hog", "boar"), "pig"),
    **dict.fromkeys(("goat", "sheep", "ram", "donkey", "mule"), "other hoof stock"),
    "raccoon": "raccoon",
    **dict.fromkeys(("rat", "rats"), "rat"),
    **dict.fromkeys(("mouse", "mice"), "mouse"),
    "squirrel": "squirrel",
    **dict.fromkeys(("hamster", "gerbil", "beaver"), "other rodent"),
    **dict.fromkeys(("rabbit", "bunny", "fox", "monkey", "deer", "ferret"), "other mammals"),
    "parrot": "parrot",
    "macaw": "macaw",
    **dict.fromkeys(("chicken", "hen", "rooster"), "chicken"),
    "turkey": "turkey",
    "goose": "goose",
    "duck": "duck",
    **dict.fromkeys(("bird", "seagull", "gull", "crow", "pigeon", "swan"), "other birds"),
}
# Lay verbs -> how W53-W64 titles open: "Bitten by dog", "Struck by horse", "Scratched by cat".
_ANIMAL_CONTACT: Final = (
    (BITE, "bitten by"),
    (SCRATCH, "scratched by"),
    (PECK, "pecked by"),
    (KICK, "struck by"),
)


# ---------------------------------------------------------------- mechanisms


@dataclass(frozen=True, slots=True)
class Mechanism:
    """A mechanism told in lay words and the tabular title of its external cause code.

    ``parts``: each part is a set of words one of which must occur in the sentence; with
    ``ordered``, in this order, each within ``_GAP`` words of the previous one."""

    title: str  # the title of a category or subcategory in the ICD-10-CM tabular list
    parts: tuple[Words, ...]
    ordered: bool = False


def _m(title: str, *parts: Words | str, ordered: bool = False) -> Mechanism:
    return Mechanism(title, tuple(_w(p) if isinstance(p, str) else p for p in parts), ordered)


ICE: Final = _w("ice icy snow snowy frozen")
STAIRS: Final = _w("stairs stair steps staircase stairway stairwell")
FROM: Final = _w("off from out through")  # "fell off the bed", not "fell and hit the table"
_FALL_OR_SLIP: Final = FALL | SLIP
# a fall from skis or a board in its riders' words: "wiped out", "crashed", "took a spill"
SPILL: Final = FALL | _w("wiped wipeout crashed spill")

# One fall per narrative: the first matching row (ICD-10-CM tabular W00-W19 "Slipping, tripping,
# stumbling and falls"; "A fall from a height" is W17 unless a more specific category applies).
# A falling object that strikes the patient is W20, not a fall of the patient.
FALLS: Final = (
    _m(
        "Other cause of strike by thrown, projected or falling object",
        FALLING_THINGS,
        _w("fell falling dropped landed"),
        "on onto",
        ordered=True,
    ),
    _m(
        "Other cause of strike by thrown, projected or falling object",
        "dropped",
        FALLING_THINGS,
        "on onto",
        ordered=True,
    ),
    # transport by animal and pedestrian conveyances (chapter 20, V00 and V80: "Fall from
    # snow-skis" is V00.321, not a fall on the same level)
    _m(
        "Animal-rider injured by fall from or being thrown from horse in noncollision accident",
        FALL | _w("thrown threw throws bucked"),
        "horse pony",
    ),
    _m("Fall from snow-skis", SPILL, "skiing ski skis skier"),
    _m("Fall from snowboard", SPILL, "snowboard snowboarding"),
    _m("Fall from skateboard", SPILL, "skateboard skateboarding skateboarder"),
    _m("Fall from in-line roller-skates", SPILL, "rollerblades rollerblading rollerblade"),
    _m("Fall from ice-skates", SPILL, "skating skates", "ice"),
    _m("Fall from sled", SPILL, "sled sledding sledge toboggan tobogganing"),
    _m("Fall from stairs and steps due to ice and snow", _FALL_OR_SLIP, ICE, STAIRS),
    _m("Fall on same level due to ice and snow", _FALL_OR_SLIP, ICE),
    _m("Fall (on)(from) escalator", _FALL_OR_SLIP, "escalator"),
    _m("Fall (on)(from) sidewalk curb", _FALL_OR_SLIP, "curb kerb"),
    _m("Fall (on) (from) unspecified stairs and steps", _FALL_OR_SLIP, STAIRS),
    _m("Fall on and from ladder", _FALL_OR_SLIP, "ladder stepladder", ordered=True),
    _m("Fall on and from scaffolding", _FALL_OR_SLIP, "scaffolding scaffold", ordered=True),
    _m("Fall from, out of or through roof", FALL, FROM, "roof", ordered=True),
    _m("Fall from, out of or through window", FALL, FROM, "window", ordered=True),
    _m("Fall from, out of or through balcony", FALL, FROM, "balcony", ordered=True),
    _m("Fall from tree", FALL, FROM, "tree", ordered=True),
    _m("Fall from cliff", FALL, FROM, "cliff", ordered=True),
    _m("Fall from non-moving wheelchair", FALL, FROM, "wheelchair", ordered=True),
    _m("Fall from bed", FALL, FROM, "bed", ordered=True),
    _m("Fall from chair", FALL, FROM, "chair", ordered=True),
    _m("Fall from other furniture", FALL, FROM, "sofa couch table stool bench desk", ordered=True),
    _m(
        "Fall from or off toilet without subsequent striking against object",
        FALL,
        FROM,
        "toilet",
        ordered=True,
    ),
    _m(
        "Fall in (into) shower or empty bathtub",
        _FALL_OR_SLIP,
        "shower bathtub tub bath",
        ordered=True,
    ),
    _m("Fall on or from playground slide", FALL, FROM, "slide", ordered=True),
    _m("Fall from playground swing", FALL, FROM, "swing", ordered=True),
    _m("Fall on or from jungle gym", FALL, FROM, "monkey jungle", ordered=True),
    _m("Fall into hole", FALL, "hole", ordered=True),
    _m("Fall down embankment (hill)", FALL, "hill embankment slope", ordered=True),
    _m(
        "Other fall from one level to another",
        FALL,
        "height meters metres wall storey story",
        ordered=True,
    ),
    _m(
        "Fall on same level from slipping, tripping and stumbling with subsequent striking "
        "against furniture",
        SLIP,
        STRIKE,
        FURNITURE,
        ordered=True,
    ),
    _m(
        "Fall on same level from slipping, tripping and stumbling with subsequent striking "
        "against other object",
        SLIP,
        STRIKE,
        OBJECT,
        ordered=True,
    ),
    _m(
        "Fall on same level from slipping, tripping and stumbling without subsequent striking "
        "against object",
        SLIP,
    ),
    _m(
        "Fall on same level, unspecified",
        FALL,
        "floor ground street sidewalk pavement road walking",
        ordered=True,
    ),
    _m("Unspecified fall", FALL),
)

# Animals (ICD-10-CM tabular W53-W64 "Exposure to animate mechanical forces") are found by title:
# see :func:`_animal`. Stings of venomous insects (X23) are left to the coder.

# One cause by an object, a person or heat per narrative. Assault first (ICD-10-CM tabular
# X92-Y09 "Assault": "injuries inflicted by another person with intent to injure or kill"): being
# stabbed, punched or shot by someone tells that intent. Guideline I.C.20.f codes an unknown
# intent as accidental: hence "cut with a knife" is W26.0 and a ball or a door is W21-W23.
OBJECTS: Final = (
    _m("Assault by knife", "stabbed stab", "knife knives"),
    _m("Assault by unspecified sharp object", "stabbed"),
    _m("Assault by unspecified firearm discharge", "shot", "gun bullet pistol rifle handgun"),
    _m("Assault by unspecified firearm discharge", "gunshot"),
    # another player in a game: accidental, not an assault (W50; Y04 is for an assault)
    _m("Accidental kick by another person", "player opponent teammate", "kicked", ordered=True),
    _m(
        "Accidental hit or strike by another person",
        "player opponent teammate",
        "hit elbowed struck tackled",
        ordered=True,
    ),
    _m("Assault by human bite", PERSON, BITE, ordered=True),
    _m("Assault by unarmed brawl or fight", "punched punch punches fistfight brawl beaten fight"),
    _m("Assault by unarmed brawl or fight", PERSON, "kicked hit slapped", "me", ordered=True),
    _m("Assault by blunt object", "assaulted attacked", "bat pipe stick bottle club"),
    _m("Assault by unspecified means", "assaulted attacked mugged"),
    _m("Struck by baseball", STRIKE, "baseball"),
    _m("Struck by soccer ball", STRIKE, "soccer"),
    _m("Struck by basketball", STRIKE, "basketball"),
    _m("Struck by volleyball", STRIKE, "volleyball"),
    _m("Struck by softball", STRIKE, "softball"),
    _m("Struck by golf club", STRIKE, "golf", "club"),
    _m("Struck by golf ball", STRIKE, "golf"),
    _m("Struck by football", STRIKE, "football"),
    _m("Struck by hit or thrown ball, unspecified type", STRIKE, "ball"),
    _m("Struck by baseball bat", STRIKE, "bat"),
    _m("Struck by tennis racquet", STRIKE, "racquet racket"),
    _m("Struck by hockey puck", STRIKE, "puck"),
    _m("Struck by hockey stick", STRIKE, "hockey"),
    _m("Walked into wall", "walked ran", "wall", ordered=True),
    _m("Walked into lamppost", "walked ran", "lamppost lamp", ordered=True),
    _m("Walked into furniture", "walked ran", FURNITURE, ordered=True),
    _m(
        "Caught, crushed, jammed, or pinched between moving objects",
        "caught slammed jammed pinched crushed shut",
        "door drawer window",
        ordered=True,
    ),
    _m("Contact with sharp glass", CUT | _w("stepped"), "glass"),
    _m("Contact with knife", CUT | _w("stabbed"), "knife knives"),
    _m("Contact with scissors", CUT, "scissors"),
    _m("Contact with edge of stiff paper", CUT, "paper"),
    _m("Contact with workbench tool", CUT | STRIKE | BITE | _w("glanced slipped"), WORKBENCH_TOOLS),
    _m("Contact with garden tool", CUT | STRIKE | _w("stepped"), "hoe rake pitchfork"),
    _m("Contact with nonpowered hand tool", CUT | STRIKE, "hammer"),
    _m("Contact with powered lawn mower", "mower lawnmower"),
    _m(
        "Contact with powered garden and outdoor hand tools and machinery",
        "chainsaw chainsaws trimmer tiller edger",
    ),
    _m("Nail entering through skin", "stepped", "nail", ordered=True),
    _m(
        "Exposure to flames in uncontrolled fire in building or structure",
        "fire",
        "house building apartment home",
    ),
    _m("Exposure to flames in controlled fire, not in building or structure", "campfire bonfire"),
    _m("Contact with hot drinks", BURN | _w("spilled hot"), "coffee tea drink cocoa"),
    _m("Contact with hot food", BURN | _w("hot"), "soup food"),
    _m("Contact with fats and cooking oils", BURN | _w("hot"), "oil grease fat"),
    _m("Contact with hot water in bath or tub", BURN, "bath tub bathtub"),
    _m("Contact with running hot water", BURN, "tap faucet shower"),
    _m("Contact with other hot fluids", BURN, "boiling water"),
    _m("Other contact with steam and other hot vapors", BURN, "steam"),
    _m("Contact with hot stove (kitchen)", BURN, "stove stovetop"),
    _m("Contact with hot toaster", BURN, "toaster"),
    _m("Contact with hot saucepan or skillet", BURN, "pan saucepan skillet pot"),
    _m("Contact with other hot household appliances", BURN, "oven iron kettle"),
    _m(
        "Contact with hot heating appliances, radiators and pipes",
        BURN,
        "radiator heater pipe pipes",
    ),
    _m("Contact with hot engines, machinery and tools", BURN, "engine exhaust muffler"),
    _m(
        "Exposure to other specified smoke, fire and flames",
        BURN | _w("caught"),
        "fire flames flame candle",
    ),
    _m("Contact with other heat and hot substances", BURN, "hot"),
)


# ---------------------------------------------------------------- transport accidents

# Transport accident definitions (ICD-10-CM tabular, notes of "Transport accidents (V00-V99)"):
# a pedestrian is anyone involved who was not riding in or on a vehicle; a pedal cyclist rides a
# pedal cycle; a motorcycle rider rides a motorcycle, moped or electric (assisted) bicycle; an
# occupant is in or on a car, pick-up truck or van, heavy transport vehicle or bus.
# ("cycle" alone is left out: "cell cycle", "cycles of chemotherapy")
PEDAL: Final = _w("cycling bicycle bicycles bike bikes biking bicycling cyclist")
MOTORCYCLE: Final = _w("motorcycle motorcycles motorbike moped motorcyclist scooter ebike")
ELECTRIC: Final = _w("e electric")  # "e-bike", "electric bike": an electric (assisted) bicycle
DRIVER: Final = _w("driving drove driver drive")
PASSENGER: Final = _w("passenger")
# The vehicle words of a narrative -> the kind of vehicle as chapter 20 sorts them.
_VEHICLES: Final[dict[str, str]] = {
    **dict.fromkeys(("car", "cars", "automobile", "sedan", "taxi", "cab", "jeep"), "car"),
    **dict.fromkeys(("suv",), "car"),
    **dict.fromkeys(("van", "minivan"), "van"),
    **dict.fromkeys(("pickup",), "pickup"),
    **dict.fromkeys(("truck", "lorry", "semi", "trailer", "tractor"), "heavy"),
    **dict.fromkeys(("bus", "coach"), "bus"),
    **dict.fromkeys(tuple(MOTORCYCLE), "motorcycle"),
    **dict.fromkeys(tuple(PEDAL), "pedal"),
    **dict.fromkeys(("train", "tram", "streetcar", "trolley"), "railway"),
}
_VEHICLE_KINDS: Final = frozenset(_VEHICLES.values())
_FIXED: Final = _w(
    "tree pole lamppost post wall guardrail barrier fence building sign pillar bridge"
)
_ANIMAL_OR_PEDESTRIAN: Final = frozenset(_ANIMALS) | _w("pedestrian pedestrians animal moose")
COLLISION: Final = _w(
    "hit hits hitting struck collided collide collides crashed crash collision ran run rammed"
) | _w("smashed knocked slammed slams plowed ploughed sideswiped clipped boned rear")
# "a car turned into me", "a van backed into my bike": a vehicle that came into the person
_INTO_ME: Final = (("into", "me"), ("into", "my"), ("into", "us"), ("into", "our"))
NONCOLLISION: Final = _w(
    "fell fall falling thrown overturned flipped rolled skidded skid lost swerved handlebars"
) | _w("handlebar")
ACCIDENT: Final = _w("accident crash wreck")
# Words placing a vehicle accident off a public highway (V00-V99 definitions: a nontraffic
# accident occurs entirely in a place other than a public highway; traffic is the default).
NONTRAFFIC: Final = _w("driveway parking farm field offroad trail garage nontraffic")
_OWNED: Final = _w("my our driving drove passenger in on inside riding rode")
_ARTICLES: Final = _w("a an the")
_OCCUPIED: Final = frozenset({"car", "van", "pickup", "heavy", "bus"})  # kinds with occupants
_OTHER: Final = _w("another other")

# The injured person's role (ICD-10-CM tabular V00-V79 category titles open with it).
_ROLE_TITLES: Final[dict[str, str]] = {
    "pedestrian": "pedestrian",
    "pedal": "pedal cycle rider",
    "motorcycle": "motorcycle rider",
    "car": "car occupant",
    "van": "occupant of pick-up truck or van",
    "pickup": "occupant of pick-up truck or van",
    "heavy": "occupant of heavy transport vehicle",
    "bus": "bus occupant",
}
# The counterpart as the category titles name it ("... injured in collision with car, pick-up
# truck or van"); None: "other and unspecified transport accidents".
_COUNTERPART_TITLES: Final[dict[str, str]] = {
    "animal": "collision with pedestrian or animal",
    "pedal": "collision with pedal cycle",
    "motorcycle": "collision with two- or three-wheeled motor vehicle",
    "car": "collision with car, pick-up truck or van",
    "van": "collision with car, pick-up truck or van",
    "pickup": "collision with car, pick-up truck or van",
    "heavy": "collision with heavy transport vehicle or bus",
    "bus": "collision with heavy transport vehicle or bus",
    "railway": "collision with railway train or railway vehicle",
    "fixed": "collision with fixed or stationary object",
    "noncollision": "noncollision transport accident",
    "unspecified": "other and unspecified transport accidents",
}
# Words that pick a fifth or sixth character where the tabular list subdivides by the kind of
# counterpart or conveyance (V43.5-: "... with sport utility vehicle", "... with other type car";
# V03.1-: "Pedestrian on foot ..."; V23.4-: "Other motorcycle driver ...").
_DETAILS: Final[dict[str, str]] = {
    "suv": "sport utility vehicle",
    "pickup": "pick-up truck",
    "van": "van",
    "minivan": "van",
    "skateboard": "on skateboard",
    "rollerblades": "on roller-skates",
    "skates": "on roller-skates",
}
_DEFAULT_DETAILS: Final = ("on foot", "other motorcycle", "other type car")


# ---------------------------------------------------------------- injuries


@dataclass(frozen=True, slots=True)
class Nature:
    """A nature of injury in lay words and the words chapter 19 titles give it."""

    lay: Words
    tabular: tuple[str, ...]  # "Open bite of right hand": ("open", "bite")


_BURN_DEGREES: Final = _w("first second third")
# Blisters told of a burn are its second degree (ICD-10-CM Index: Blister, due to burn - see
# Burn, by site, second degree; Burn, second degree (blistering)).
_BLISTERS: Final = _w("blister blisters blistered blistering")
# "hurt"/"injured" (the last) only for a site that no other nature is told of; so is a blow told
# alone ("fell out of bed and hit my head": ICD-10-CM Index "Injury, head S09.90").
_UNSPECIFIED: Final = Nature(_w("hurt injured injury") | _w("hit banged bumped"), ("injury",))
NATURES: Final = (
    Nature(BITE, ("open", "bite")),
    Nature(_w("broke broken break breaks fractured fracture fractures cracked"), ("fracture",)),
    Nature(_w("dislocated dislocation"), ("dislocation",)),
    # ICD-10-CM Index: "Tear, ligament - see Sprain"; "Whiplash injury S13.4"
    Nature(_w("sprained sprain twisted tore torn tear whiplash"), ("sprain",)),
    Nature(BURN, ("burn", "degree")),
    Nature(_w("stabbed stab"), ("puncture", "wound")),  # not "puncture": "lumbar puncture"
    Nature(CUT | _w("laceration lacerated gash"), ("laceration",)),
    Nature(_w("bruised bruise bruises bruising contusion"), ("contusion",)),
    # ICD-10-CM Index: "Scratch - see Abrasion"
    Nature(_w("scraped scrape grazed graze abrasion skinned") | SCRATCH, ("abrasion",)),
    _UNSPECIFIED,
)

# Lay body words -> the words chapter 19 titles use for the site, most specific reading first
# ("nose": "Laceration of nose", "Fracture of nasal bones"). "other" and "unspecified" choose
# between texts with the same words otherwise ("... of other part of head": the forehead,
# ICD-10-CM Index "Laceration, forehead S01.81-"; "... of unspecified part of head").
# a site's words cover the whole site of a title: "Fracture of unspecified parts of lumbosacral
# spine and pelvis" (S32.9), "Contusion of lower back and pelvis" (S30.0)
_PELVIS: Final = (
    ("unspecified", "parts", "lumbosacral", "spine", "pelvis"),
    ("lower", "back", "pelvis"),
    ("pelvis",),
)
_SINGULAR_SITES: Final[dict[str, tuple[tuple[str, ...], ...]]] = {
    "hand": (("hand",),),
    "hands": (("hand",),),
    "palm": (("palm",), ("hand",)),
    "wrist": (("wrist",),),
    "thumb": (("thumb",),),
    "finger": (("finger",),),
    "fingers": (("finger",),),
    "forearm": (("forearm",),),
    "elbow": (("elbow",), ("ulnohumeral", "joint")),  # Index: "Dislocation, elbow S53.10-"
    "arm": (("upper", "arm"), ("forearm",)),
    "shoulder": (("shoulder",),),
    "collarbone": (("clavicle",),),
    "clavicle": (("clavicle",),),
    "foot": (("foot",),),
    "feet": (("foot",),),
    "heel": (("heel",), ("calcaneus",)),
    "heels": (("heel",), ("calcaneus",)),
    "toe": (("toe",),),
    "toes": (("toe",),),
    "ankle": (("ankle",),),
    "leg": (("lower", "leg"),),
    "shin": (("tibia",), ("lower", "leg")),  # a broken shin is its bone; a cut one, the leg
    "shinbone": (("tibia",),),
    "calf": (("lower", "leg"),),
    "knee": (("knee",),),
    "kneecap": (("patella",),),
    # the femur first: S72.9's inclusion term "Fracture of thigh NOS" would take a part told
    # ("thigh bone, the shaft": S72.30-); a cut or bruise of the thigh has no femur title
    "thigh": (("femur",), ("thigh",)),
    "hip": (("hip",), ("neck", "femur")),
    "tibia": (("tibia",),),
    # a forearm bone with no part told is the forearm's (Index: Fracture, radius - see also
    # Fracture, forearm S52.9-)
    "radius": (("radius",), ("forearm",)),
    "ulna": (("ulna",), ("forearm",)),
    "humerus": (("humerus",), ("upper", "arm")),
    "fibula": (("fibula",), ("shaft", "fibula")),  # Index: Fracture, fibula (shaft) S82.40-
    "femur": (("femur",),),
    "head": (("unspecified", "part", "head"), ("head",)),
    "scalp": (("scalp",),),
    "forehead": (("other", "part", "head"),),
    "face": (("other", "part", "head"),),
    "cheek": (("cheek", "temporomandibular", "area"),),
    "chin": (("other", "part", "head"),),
    "jaw": (("jaw",), ("mandible",)),
    "nose": (("nose",), ("nasal", "bones")),
    "lip": (("lip",),),
    "ear": (("ear",),),
    "eye": (("eyelid", "periocular", "area"),),
    "neck": (("neck",), ("ligaments", "cervical", "spine")),
    # a nature and its site in one word (Index: "Whiplash injury S13.4")
    "whiplash": (("ligaments", "cervical", "spine"),),
    "chest": (("thorax",), ("chest", "wall")),
    "rib": (("one", "rib"), ("rib",)),
    "ribs": (("multiple", "rib"), ("rib",)),
    "back": (("lower", "back"), ("lumbar", "vertebra"), ("back", "wall", "thorax")),
    "abdomen": (("abdominal", "wall"),),
    "belly": (("abdominal", "wall"),),
    "stomach": (("abdominal", "wall"),),
    "buttock": (("buttock",),),
    # ICD-10-CM Index: "Fracture, pelvis S32.9-", "Fracture, skull S02.91-" (the unspecified
    # texts first), "Fracture, coccyx S32.2-"
    "pelvis": _PELVIS,
    "pelvic": _PELVIS,
    "skull": (("unspecified", "skull"), ("skull",)),
    "coccyx": (("coccyx",),),
    "tailbone": (("coccyx",),),
}
_SITES: Final = _SINGULAR_SITES | {  # plurals read as their singular: "both my wrists"
    plural: _SINGULAR_SITES[singular]
    for plural, singular in (
        ("wrists", "wrist"),
        ("thumbs", "thumb"),
        ("forearms", "forearm"),
        ("elbows", "elbow"),
        ("arms", "arm"),
        ("shoulders", "shoulder"),
        ("ankles", "ankle"),
        ("legs", "leg"),
        ("knees", "knee"),
        ("thighs", "thigh"),
        ("hips", "hip"),
        ("shins", "shin"),
    )
}
# Words before a site word that refine it ("index finger", "big toe", "upper arm").
_SITE_WORDS: Final[dict[str, str]] = {
    "index": "index",
    "middle": "middle",
    "ring": "ring",
    "little": "little",
    "pinky": "little",
    "big": "great",
    "great": "great",
    "upper": "upper",
    "lower": "lower",
}
_MARKS: Final = frozenset({"other", "unspecified"})
# Words after a bone's site that name its part ("my left collarbone, the middle part", "thigh
# bone in the middle of the shaft"): the shaft (S42.02- "Fracture of shaft of clavicle",
# S72.3- "Fracture of shaft of femur"). Read up to _PART_REACH words after the site.
_PART_WORDS: Final[dict[str, str]] = {
    "shaft": "shaft",
    "midshaft": "shaft",
    "middle": "shaft",
    "mid": "shaft",
}
_PART_REACH: Final = 6
_HANDS: Final = frozenset({"hand", "hands"})
_CLAUSE_ENDS: Final = frozenset({";", ".", "and", "but"})
#: An ankle's bones told broken by their count: "both ankle bones" is bimalleolar, "all three"
#: trimalleolar (ICD-10-CM Index: Fracture, ankle, bimalleolar S82.84-; trimalleolar S82.85-),
#: whose titles name the lower leg ("Bimalleolar fracture of left lower leg").
_MALLEOLI_COUNTS: Final = (("trimalleolar", _w("three")), ("bimalleolar", _w("both two")))


def _malleoli(site: str, nature: Nature, parts: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    if site not in ("ankle", "ankles") or nature.tabular != ("fracture",):
        return ()
    told = set(parts)
    for count, words_of_count in _MALLEOLI_COUNTS:
        if not words_of_count.isdisjoint(told):
            return ((count, "lower", "leg"),)
    return ()


#: A long bone's lay or clinical word -> the bone.
_LONG_BONES: Final[dict[str, str]] = {
    **{bone: bone for bone in LONG_BONES},
    "shin": "tibia",
    "shinbone": "tibia",
}
#: (bone, joint) -> the end of the bone the joint is at (S42.2-/S42.4- humerus, S52.1-/S52.5-
#: radius, S72.1-/S72.4- femur, S82.1-/S82.3- tibia titles: "upper end", "lower end").
_JOINT_ENDS: Final[dict[tuple[str, str], str]] = {
    ("radius", "wrist"): "lower",
    ("ulna", "wrist"): "lower",
    ("radius", "elbow"): "upper",
    ("ulna", "elbow"): "upper",
    ("humerus", "elbow"): "lower",
    ("humerus", "shoulder"): "upper",
    ("tibia", "ankle"): "lower",
    ("fibula", "ankle"): "lower",
    ("tibia", "knee"): "upper",
    ("fibula", "knee"): "upper",
    ("femur", "knee"): "lower",
    ("femur", "hip"): "upper",
}


# Words of the 7th-character cues (index.SeventhCharacter): "follow-up visit", "sequela".
_ENCOUNTER_WORDS: Final = _w("follow sequela sequelae late subsequent open compound")
# Every word the tables above read: a sentence with none of them tells this module nothing.
_VOCABULARY: Final = frozenset().union(
    *(part for rule in (*FALLS, *OBJECTS) for part in rule.parts),
    *(nature.lay for nature in NATURES),
    _BURN_DEGREES,
    _BLISTERS,
    _ANIMALS,
    _VEHICLES,
    _SITES,
    _FIXED,
    COLLISION,
    NONCOLLISION,
    ACCIDENT,
    DRIVER,
    PASSENGER,
    _ENCOUNTER_WORDS,
    _VENOMOUS,
)


# ---------------------------------------------------------------- the result


@dataclass(frozen=True, slots=True)
class LayInjuries:
    """Codes (undotted, billable in the release) of one narrative's lay injury account."""

    injuries: tuple[str, ...]  # chapter 19 injury codes, in the order told
    external_causes: tuple[str, ...]  # chapter 20 codes: transport, fall, animal, object


def lay_injuries(narrative: str, codeset: MemoryCodeSet) -> LayInjuries:
    """The injuries and external causes a narrative tells in lay words (see the module doc)."""
    told = _kept_words(narrative)
    seventh = _seventh_character(told)
    venom = _venom(told, codeset, seventh)
    if venom is not None:
        # T63 names the animal and the intent: no chapter 20 code goes with it (I.C.20.a.9)
        return LayInjuries((venom,), ())
    titles = _titles(codeset)
    causes: list[str] = []
    transport = _transport(told, codeset, titles, seventh)
    if transport is not None:
        causes.append(transport)
    else:  # a fall from a bike or a hit by a car is the transport accident, nothing else
        for title in (_animal(told, titles), _first(told, OBJECTS), _first(told, FALLS)):
            code = _with_seventh(title, seventh, codeset) if title is not None else None
            if code is not None and code not in causes:
                causes.append(code)
    if not causes:
        # an injury told without how it happened is the coder's: clinical text names injuries
        # in the tabular list's words, and "burn", "fracture" there are often no injury; but a
        # patient's own account ("I twisted my ankle playing soccer") is read as one
        if not any("my" in tokens for tokens in told):
            return LayInjuries((), ())
        return LayInjuries(tuple(_injuries(told, index_for(codeset), seventh)), ())
    return LayInjuries(tuple(_injuries(told, index_for(codeset), seventh)), tuple(causes))


_NO_SITE: Final = frozenset({"T07", "T14", "T30"})


def _venom(told: Sequence[Sequence[str]], codeset: MemoryCodeSet, seventh: str) -> str | None:
    """The T63 code of a sting or bite by a venomous animal the narrative names ("stung by a
    bee": T63.441A, Toxic effect of venom of bees, accidental), or None."""
    for tokens in told:
        for token in tokens:
            found = _VENOMOUS.get(token)
            if found is None or found[1].isdisjoint(tokens):
                continue
            base = _venom_codes(codeset).get(found[0])
            code = base + seventh if base is not None else None
            record = codeset.records.get(code) if code is not None else None
            if code is not None and record is not None and record.billable:
                return code
    return None


_VENOM_TITLE: Final = re.compile(r"^Toxic effect of (.+), accidental \(unintentional\)$")
_VENOM_CODES: dict[int, tuple[MemoryCodeSet, dict[str, str]]] = {}


def _venom_codes(codeset: MemoryCodeSet) -> dict[str, str]:
    """T63 title words ("venom of bees") -> the six-character base of the accidental code; built
    once per code set."""
    return _per_codeset(_VENOM_CODES, codeset, _build_venom_codes)


def _build_venom_codes(codeset: MemoryCodeSet) -> dict[str, str]:
    table: dict[str, str] = {}
    for code, record in codeset.records.items():
        if code.startswith("T63") and len(code) == 6:
            match = _VENOM_TITLE.match(record.description)
            if match:
                table[match.group(1)] = code
    return table


def with_lay_injuries(
    ranked: Sequence[tuple[float, str]], narrative: str, codeset: MemoryCodeSet, probability: float
) -> list[tuple[float, str]]:
    """``ranked`` (probability, code) with what the narrative's lay account adds: its injuries
    when ``ranked`` has no chapter 19 code, then its external causes when there is one (an
    external cause code is never principal and always goes with the injury or condition it
    explains: Official Guidelines I.C.20). Codes already coded are not repeated. Added codes
    carry ``probability`` (the coder's threshold): they come from rules, not from the model."""
    lay = lay_injuries(narrative, codeset)
    out = _traumatic_hemorrhage(list(ranked), narrative, lay, codeset)
    if any(code.startswith(_BURNS) for code in lay.injuries):
        # the blisters of a burn are its depth (see _BLISTERS), not a "Blister (nonthermal)"
        records = codeset.records
        out = [(p, c) for p, c in out if _NONTHERMAL not in records[c].description.lower()]
    taken = {code for _, code in out}
    if not any(_in_chapter_19(code) and not _no_site(code) for code in taken):
        if lay.injuries:
            # the lay account names the site an unspecified-region code (T30.0 "burn of
            # unspecified body region") does not: that code says no more (I.A.9.b)
            out = [(p, c) for p, c in out if not _no_site(c)]
            taken = {code for _, code in out}
        out += [(probability, code) for code in lay.injuries if code not in taken]
    if any(_in_chapter_19(code) for _, code in out):
        out += [(probability, code) for code in lay.external_causes if code not in taken]
    return out


#: Nontraumatic intracranial hemorrhage -> its traumatic code up to the 6th character (Index:
#: Hemorrhage, subdural, traumatic S06.5X-; extradural, traumatic S06.4X-; subarachnoid,
#: traumatic S06.6X-; intracerebral (brain), traumatic S06.36-).
_TRAUMATIC_HEMORRHAGE: Final[dict[str, str]] = {
    "I620": "S065X",
    "I621": "S064X",
    "I60": "S066X",
    "I61": "S0636",
}
_TRAUMA_WORDS: Final = _w("traumatic trauma injury injured accident assault assaulted")
_NOT_TRAUMA: Final = _w("nontraumatic spontaneous atraumatic")
#: Loss of consciousness as told, one sentence's words at a time.
_LOSS_OF_CONSCIOUSNESS: Final = (
    ("passed", "out"),
    ("blacked", "out"),
    ("knocked", "out"),
    ("lost", "consciousness"),
    ("loss", "of", "consciousness"),
    ("loc",),
    ("unconscious",),
)
_UNSPECIFIED_HEAD_INJURY: Final = "S0990XA"
#: Burns by site (T20-T25) and the word of the chapter 19 blister codes that a burn's are not.
_BURNS: Final = ("T20", "T21", "T22", "T23", "T24", "T25")
_NONTHERMAL: Final = "(nonthermal)"


def _traumatic_hemorrhage(
    ranked: list[tuple[float, str]], narrative: str, lay: LayInjuries, codeset: MemoryCodeSet
) -> list[tuple[float, str]]:
    """A nontraumatic intracranial hemorrhage (I60, I61, I62.0-, I62.1) coded where the
    narrative tells an injury (a mechanism lay_injuries reads, or "trauma", "injury") and
    nowhere "spontaneous" or "nontraumatic": the traumatic code (S06, Index: Hemorrhage,
    <site>, traumatic; I60-I62 Excludes1 the traumatic ones). Its 6th character tells loss
    of consciousness: told 9 (unspecified duration), denied 0 ("I never passed out"), not told
    A (status unknown, FY2023's code for that). S09.90 "Unspecified injury of head" goes beside
    it (I.A.9.b). "I fell off a ladder ... a small subdural bleed. I never passed out" is
    S06.5X0A and W11, DRG 087, not I62.00 and S09.90XA (DRG 914)."""
    if not any(code.startswith(tuple(_TRAUMATIC_HEMORRHAGE)) for _, code in ranked):
        return ranked  # the sentences are read only when such a code is coded
    told = read(narrative)
    if any(not _NOT_TRAUMA.isdisjoint(sentence.said) for sentence in told):
        return ranked
    if not lay.external_causes and all(_TRAUMA_WORDS.isdisjoint(s.kept) for s in told):
        return ranked
    sixth = "A"
    for sentence in told:
        for phrase in _LOSS_OF_CONSCIOUSNESS:
            if contains(sentence.kept, phrase):
                sixth = "9"
            elif contains(sentence.said, phrase) and sixth == "A":
                sixth = "0"
    out: list[tuple[float, str]] = []
    for p, code in ranked:
        stem = next((s for c, s in _TRAUMATIC_HEMORRHAGE.items() if code.startswith(c)), None)
        if stem is not None and codeset.is_billable(f"{stem}{sixth}A"):
            code = f"{stem}{sixth}A"
        if all(code != c for _, c in out):
            out.append((p, code))
    if any(code.startswith("S06") for _, code in out):
        out = [(p, c) for p, c in out if c != _UNSPECIFIED_HEAD_INJURY]
    return out


def is_injury(code: str) -> bool:
    """Injuries and burns (S00-T34), the natures of injury a lay account names."""
    return _INJURY[0] <= code[:3] <= _INJURY[1]


def _no_site(code: str) -> bool:
    """An injury of unspecified body region: T07 multiple, T14 unspecified, T30 burn."""
    return code[:3] in _NO_SITE


def _in_chapter_19(code: str) -> bool:
    return _CHAPTER_19[0] <= code[:3] <= _CHAPTER_19[1]


def is_external_cause(code: str) -> bool:
    return _CHAPTER_20[0] <= code[:3] <= _CHAPTER_20[1]


# ---------------------------------------------------------------- reading the narrative


def _kept_words(narrative: str) -> list[list[str]]:
    """Each sentence's words outside negation scopes (context.py): "I did not fall" keeps
    "i did" only. A fall word followed by "asleep" or "ill" is no fall. Sentences without a
    word of the module's tables are left empty (NegEx is the costly part)."""
    told: list[list[str]] = []
    for sentence in sentences(narrative):
        tokens = words(sentence)
        if _VOCABULARY.isdisjoint(tokens):
            told.append([])  # nothing this module reads: most sentences of clinical text
            continue
        kept = affirmed(tokens)
        for i in range(len(kept) - 1):
            if broken_thing(kept, i):  # "broken glass" is no fracture
                kept[i] = ""
                continue
            after = kept[i + 1]
            if kept[i] in _TOOLS and after in SLIP:  # "the knife slipped": the tool's slip
                kept[i + 1] = ""
                continue
            if kept[i] in FALL and (
                after in _NOT_A_FALL or (kept[i] in _DECREASE[0] and after in _DECREASE[1])
            ):
                kept[i] = ""
        told.append(kept)
    return told


def _seventh_character(told: Sequence[Sequence[str]]) -> str:
    """A (initial encounter), D (subsequent encounter: a follow-up visit) or S (sequela), from
    the same cues the coder reads (index.SeventhCharacter). Guideline I.C.19.a: A while the
    patient receives active treatment, D for routine care in the healing phase, S for sequelae."""
    if not any(not _ENCOUNTER_WORDS.isdisjoint(tokens) for tokens in told):
        return "A"
    phrases: set[str] = set()
    for tokens in told:
        stems = content_stems(tokens)
        for size in (1, 2, 3):
            phrases.update(" ".join(stems[i : i + size]) for i in range(len(stems) - size + 1))
    for char in SeventhCharacter.cues(phrases):
        if char in ("D", "S"):
            return char
    return "A"


def _matches(tokens: Sequence[str], rule: Mechanism) -> bool:
    if not rule.ordered:
        present = set(tokens)
        return all(not part.isdisjoint(present) for part in rule.parts)
    return _in_order(tokens, rule.parts)


def _in_order(tokens: Sequence[str], parts: Sequence[Words]) -> bool:
    """Whether a word of each part occurs in order, each within ``_GAP`` words of the last."""
    return any(
        token in parts[0] and _follows(tokens, i, parts[1:]) for i, token in enumerate(tokens)
    )


def _follows(tokens: Sequence[str], at: int, parts: Sequence[Words]) -> bool:
    if not parts:
        return True
    end = min(len(tokens), at + 1 + _GAP)
    return any(tokens[j] in parts[0] and _follows(tokens, j, parts[1:]) for j in range(at + 1, end))


def _first(told: Sequence[Sequence[str]], rules: Iterable[Mechanism]) -> str | None:
    """The title of the first rule that a sentence matches (rules in order of priority)."""
    present = {t for tokens in told for t in tokens}
    for rule in rules:
        if any(part.isdisjoint(present) for part in rule.parts):
            continue  # most rules: a word the narrative never uses
        if any(_matches(tokens, rule) for tokens in told):
            return rule.title
    return None


# ---------------------------------------------------------------- tabular titles


_TITLES: dict[int, tuple[MemoryCodeSet, dict[str, str]]] = {}
_TABLES_LOCK = threading.Lock()


def _per_codeset(
    cache: dict[int, tuple[MemoryCodeSet, dict[str, str]]],
    codeset: MemoryCodeSet,
    build: Callable[[MemoryCodeSet], dict[str, str]],
) -> dict[str, str]:
    """``build(codeset)``, built once per code set and kept in ``cache``."""
    with _TABLES_LOCK:
        found = cache.get(id(codeset))
        if found is None or found[0] is not codeset:
            found = cache[id(codeset)] = (codeset, build(codeset))
        return found[1]


def _titles(codeset: MemoryCodeSet) -> dict[str, str]:
    """Lower-cased title -> code of every chapter 20 category and subcategory (7th-character
    codes aside) of the release, the deepest code where titles repeat; built once per code
    set."""
    return _per_codeset(_TITLES, codeset, _build_titles)


def _build_titles(codeset: MemoryCodeSet) -> dict[str, str]:
    table: dict[str, str] = {}
    for code, record in codeset.records.items():
        if len(code) < 7 and is_external_cause(code):
            # a subcategory may repeat its category's title (W22.8, W22): the deeper code is
            # the one that says what the title says
            table[record.description.lower()] = code
    return table


def _node(title: str | None, titles: dict[str, str]) -> str | None:
    return None if title is None else titles.get(title.lower())


def _with_seventh(title: str, seventh: str, codeset: MemoryCodeSet) -> str | None:
    """The billable code of a tabular ``title`` for the encounter ``seventh``: the title's code
    itself when billable (Y09), else its 7th-character child (W54.0 -> W54.0XXA; the release
    lists it with its placeholders X), descending through default children ("unspecified")
    where the title is a header. None when the release has no such billable code."""
    node = _titles(codeset).get(title.lower())
    return None if node is None else _leaf(node, seventh, codeset, ())


def _leaf(node: str, seventh: str, codeset: MemoryCodeSet, details: Sequence[str]) -> str | None:
    records = codeset.records
    while True:
        record = records[node]
        kids = codeset.children.get(node, ())
        if not kids:
            return node if record.billable else None
        if len(kids[0]) == 7:
            chosen = next((k for k in kids if k[-1] == seventh), None)
            return chosen if chosen is not None and records[chosen].billable else None
        found = _by_detail(kids, details, codeset) or default_child(codeset, node)
        if found is None:
            return None
        node = found


def _by_detail(kids: Sequence[str], details: Sequence[str], codeset: MemoryCodeSet) -> str | None:
    for detail in details:
        for kid in kids:
            if f" {detail} " in f" {codeset.records[kid].description.lower()} ":
                return kid
    return None


# ---------------------------------------------------------------- animals


def _animal(told: Sequence[Sequence[str]], titles: dict[str, str]) -> str | None:
    """The W53-W64 title ("Bitten by dog", "Struck by horse", "Scratched by cat") of an animal
    and what it did, both in one sentence, else "Other contact with <animal>" ("scratched by a
    dog": W54.8-); ICD-10-CM tabular W53-W64: an animal the tabular list does not name is
    "other mammals" (W55.8-) or "other birds" (W61.9-)."""
    for tokens in told:
        present = set(tokens)
        animals = [_ANIMALS[t] for t in tokens if t in _ANIMALS]
        if not animals:
            continue
        for verbs, opening in _ANIMAL_CONTACT:
            if verbs.isdisjoint(present):
                continue
            title = f"{opening} {animals[0]}"
            if title in titles:
                return title
            # an animal the tabular list gives no "scratched by" title ("scratched by dog") had
            # other contact with the person: "Other contact with dog" (W54.8-)
            other = f"other contact with {animals[0]}"
            if verbs is SCRATCH and other in titles:
                return other
    return None


# ---------------------------------------------------------------- transport


def _transport(
    told: Sequence[Sequence[str]], codeset: MemoryCodeSet, titles: dict[str, str], seventh: str
) -> str | None:
    """The V00-V79 code of a transport accident: the category of the injured person's role and
    the counterpart, then the person (driver, passenger, unspecified) in a traffic accident
    unless the narrative places it off a public highway (definitions of V00-V99: a vehicle
    accident is assumed to have occurred on the public highway unless another place is
    specified), then the kind of counterpart or conveyance."""
    tokens = [t for sentence in told for t in sentence]
    present = set(tokens)
    if any(contains(sentence, pair) for sentence in told for pair in _INTO_ME):
        present.add("collided")
    role, own = _role(tokens)
    counterpart = _counterpart(tokens, own, role)
    if role is None:
        if counterpart not in _VEHICLE_KINDS or not _struck_by_vehicle(told):
            return None
        role = "pedestrian"
    elif counterpart is None:
        if not NONCOLLISION.isdisjoint(present):
            counterpart = "noncollision"
        elif not (ACCIDENT | COLLISION).isdisjoint(present):
            counterpart = "unspecified"
        else:
            return None  # riding a bike and hurt: no accident told
    elif COLLISION.isdisjoint(present) and ACCIDENT.isdisjoint(present):
        # another vehicle named, none hit: thrown or fallen from one's own ("a car cut me
        # off, I went over the handlebars") is a noncollision accident (V18, V28)
        if NONCOLLISION.isdisjoint(present):
            return None
        counterpart = "noncollision"
    category = _category(role, counterpart, titles)
    if category is None:
        return None
    traffic = NONTRAFFIC.isdisjoint(present)
    person = _person(role, present)
    child = _person_child(category, person, traffic, counterpart == "unspecified", codeset)
    if child is None:
        return None
    details = [_DETAILS[t] for t in tokens if t in _DETAILS]
    if role == "motorcycle" and (
        "ebike" in present or any(_in_order(s, (ELECTRIC, PEDAL)) for s in told)
    ):
        details.insert(0, "electric (assisted) bicycle")
    return _leaf(child, seventh, codeset, (*details, *_DEFAULT_DETAILS))


def _role(tokens: Sequence[str]) -> tuple[str | None, int | None]:
    """The injured person's mode of transport and the position of its word: a pedal cycle or
    motorcycle ridden, or the vehicle an occupant was in ("my car", "passenger in a van";
    "driving" alone is a car). None: not riding anything, so a pedestrian if a vehicle hit."""
    for i, token in enumerate(tokens):
        if token in MOTORCYCLE or (token in PEDAL and i > 0 and tokens[i - 1] in ELECTRIC):
            return "motorcycle", i
    for i, token in enumerate(tokens):
        if token in PEDAL:
            return "pedal", i
    for i, token in enumerate(tokens):
        kind = _VEHICLES.get(token)
        if kind not in _OCCUPIED:
            continue
        before = [t for t in tokens[max(0, i - 3) : i] if t not in _ARTICLES]
        if before and before[-1] in _OWNED:
            return kind, i
    if not (DRIVER | PASSENGER).isdisjoint(tokens):
        return "car", None
    return None, None


def _counterpart(tokens: Sequence[str], own: int | None, role: str | None) -> str | None:
    """What the injured person's vehicle (or the pedestrian) collided with: the first other
    vehicle, fixed object, pedestrian or animal named. A vehicle of the person's own kind is a
    counterpart only as "another" or "other" one ("another cyclist")."""
    for i, token in enumerate(tokens):
        if i == own:
            continue
        kind = _VEHICLES.get(token)
        if kind is not None:
            if kind != role or not _OTHER.isdisjoint(tokens[max(0, i - 2) : i]):
                return kind
        elif role is not None and token in _FIXED:
            return "fixed"
        elif role is not None and token in _ANIMAL_OR_PEDESTRIAN:
            return "animal"
    return None


def _struck_by_vehicle(told: Sequence[Sequence[str]]) -> bool:
    """A vehicle struck the narrator: "a car hit me", "I was hit by a bus", "run over"."""
    vehicles = frozenset(_VEHICLES)
    return any(
        _in_order(s, (vehicles, COLLISION)) or _in_order(s, (COLLISION, _w("by"), vehicles))
        for s in told
    )


def _category(role: str, counterpart: str, titles: dict[str, str]) -> str | None:
    """The V category "<role> injured in <counterpart>" ("Pedal cycle rider injured in collision
    with car, pick-up truck or van": V13); "other" before the counterpart where the role's own
    kind is meant ("... collision with other pedal cycle")."""
    opening = f"{_ROLE_TITLES[role]} injured in "
    wanted = _COUNTERPART_TITLES[counterpart]
    other = wanted.replace("collision with ", "collision with other ")
    for text in (wanted, other):
        code = titles.get(opening + text)
        if code is not None:
            return code
    return None


def _person(role: str, present: set[str]) -> str:
    if role == "pedestrian":
        return "pedestrian"
    if not PASSENGER.isdisjoint(present):
        return "passenger"
    if role in ("pedal", "motorcycle") or not DRIVER.isdisjoint(present):
        return "driver"  # riding a cycle is driving it (V00-V99 definitions: "driver")
    return "unspecified"


def _person_child(
    category: str, person: str, traffic: bool, unspecified: bool, codeset: MemoryCodeSet
) -> str | None:
    """The child of a V category for the person and the place: "Pedal cycle driver injured in
    ... in traffic accident" (V13.4), "Car occupant (driver) (passenger) injured in unspecified
    traffic accident" (V49.9)."""
    place = ("unspecified " if unspecified else "") + ("traffic" if traffic else "nontraffic")
    for kid in codeset.children.get(category, ()):
        title = codeset.records[kid].description.lower()
        if not title.endswith(f" in {place} accident") or "boarding" in title:
            continue
        if "outside" in title:
            continue
        anyone = "(driver) (passenger)" in title
        if person == "pedestrian" or anyone:
            return kid
        if person == "unspecified" and title.startswith("unspecified"):
            return kid
        if person in title.split() and not title.startswith("unspecified"):
            return kid
    return None


# ---------------------------------------------------------------- injuries


def _injuries(told: Sequence[Sequence[str]], index: CodeIndex, seventh: str) -> list[str]:
    """Chapter 19 codes for each lay nature of injury and the body site told nearest to it
    ("bruised my left knee"; "I hurt my ankle. It is sprained."): the most specific code text
    of the release that says the nature, the site and the side and no more, resolved to the
    named side and the encounter. A site, or a body region, told with a definite nature
    ("sprained") is not coded again as an unspecified injury ("hurt", "hit")."""
    tokens = [t for sentence in told for t in sentence]
    sites = [i for i, t in enumerate(tokens) if t in _SITES and not _part_of_a_bone(tokens, i)]
    # an open bite needs a biter: "the axe ... bit into my shin" is the axe's cut
    biter = any(t in _ANIMALS or t in PERSON for t in tokens)
    # the one site of the account takes a nature told later about it ("oil splashed on the
    # back of my right hand ... the ER said second-degree burn")
    one_site = len({tokens[j] for j in sites}) == 1
    pairs: dict[int, list[tuple[Nature, int]]] = {}
    for i, token in enumerate(tokens):
        nature = next((n for n in NATURES if token in n.lay), None)
        if nature is None or not sites or (nature.lay is BITE and not biter):
            continue
        # "broke my wrist" names the site after the verb, "my wrist is broken" before it
        at = min(sites, key=lambda j: abs(j - i) + (2 if j < i else 0))
        if abs(at - i) <= _NEAR or one_site:
            pairs.setdefault(at, []).append((nature, i))
    found: list[str] = []
    unspecified: set[str] = set()
    sides = set(sides_before_site(tokens, BODY_SITES))
    only_side = next(iter(sides)) if len(sides) == 1 else None
    for at, told_natures in pairs.items():
        natures = [n for n, _ in told_natures]
        definite = [n for n in natures if n is not _UNSPECIFIED] or natures[:1]
        for nature in dict.fromkeys(definite):
            nature_at = [i for n, i in told_natures if n is nature]
            code = _injury_code(nature, tokens, at, index, seventh, only_side, nature_at)
            if code is not None and code not in found:
                found.append(code)
                if nature is _UNSPECIFIED:
                    unspecified.add(code)
    # nor an unspecified injury of a body region beside a definite one of it (one block of
    # chapter 19 a region: S10-S19 neck): "my neck ... a whiplash" is S13.4 alone
    regions = {code[:2] for code in found if code not in unspecified}
    return [c for c in found if c not in unspecified or c[:2] not in regions]


#: Title words an injury code may say beyond its nature, site and side when no title says only
#: those: the unspecified joint of the site ("Unspecified dislocation of right shoulder joint").
_FREE_WORDS: Final = ("unspecified", "joint")


def _free_ids(index: CodeIndex) -> set[int]:
    return set(index.ids(content_stems(list(_FREE_WORDS))))


def _part_of_a_bone(tokens: Sequence[str], at: int) -> bool:
    """ "femoral neck", "neck of the femur", "head of the radius": a part of a bone, not the
    neck or the head of the body; "the back of my calf": a side of a site, not the back."""
    before = tokens[at - 1] if at > 0 else ""
    after = tokens[at + 1] if at + 1 < len(tokens) else ""
    if tokens[at] == "back":  # "the back of my right calf" is the calf's
        return after == "of"
    if tokens[at] not in _BONE_PARTS:
        return False
    return before in _BONES or after == "of"


def _injury_code(
    nature: Nature,
    tokens: Sequence[str],
    at: int,
    index: CodeIndex,
    seventh: str,
    only_side: str | None = None,
    nature_at: Sequence[int] = (),
) -> str | None:
    """``only_side``: the one side the whole account names, for a site told without its own
    ("landed on my right wrist. Broke my distal radius": the right radius, S52.501A).
    ``nature_at``: where the nature's words are (a burn's depth is read near them too)."""
    before = tokens[max(0, at - 3) : at]
    side = next((t for t in reversed(before) if t in SIDES), None)
    if side is None:  # told after it: "three ribs on my left side"
        later = tokens[at + 1 : at + _PART_REACH]
        side = next((t for t, n in itertools.pairwise(later) if t in SIDES and n == "side"), None)
    side = side or only_side
    refine = [_SITE_WORDS[t] for t in before if t in _SITE_WORDS]
    # a bone's part told near it: "the shaft of my right femur", "my left collarbone, the
    # middle part" ("middle" before a site is a finger's)
    ahead = tokens[max(0, at - _PART_REACH) : at]
    after_words = list(
        itertools.takewhile(lambda t: t not in _CLAUSE_ENDS, tokens[at + 1 : at + _PART_REACH])
    )
    parts = [t for t in ahead if t not in _SITE_WORDS] + after_words
    refine += list(dict.fromkeys(_PART_WORDS[t] for t in parts if t in _PART_WORDS))
    # the end of a long bone told by the joint it is near ("the end of my radius near the
    # wrist": the lower end, S52.50-)
    bone = _LONG_BONES.get(tokens[at], "")
    end = next((_JOINT_ENDS[bone, t] for t in after_words if (bone, t) in _JOINT_ENDS), None)
    if end is not None:
        refine += [end, "end"]
    # "the back of my right hand": the hand's back, a site of its own in the burn titles
    # ("Burn of second degree of back of right hand", T23.26-)
    if tokens[at] in _HANDS and ("back", "of") in itertools.pairwise(tokens[max(0, at - 4) : at]):
        refine.append("back")
    if nature.lay is BURN:  # its depth, when told ("second degree": T22.211A, I.C.19.d)
        windows = (tokens[max(0, k - _NEAR) : k + _NEAR] for k in (at, *nature_at))
        told = [t for w in windows for t in w]
        degrees = [t for t in told if t in _BURN_DEGREES]
        if not degrees and not _BLISTERS.isdisjoint(told):
            degrees = ["second"]
        refine += list(dict.fromkeys(degrees))
    for site in (*_malleoli(tokens[at], nature, parts), *_SITES[tokens[at]]):
        required = content_stems([*nature.tabular, *site])
        query = index.ids([*required, *content_stems(refine + ([side] if side else []))])
        need = frozenset(index.ids(required))
        if len(need) < len(set(required)):
            continue
        marks = [w for w in site if w in _MARKS]
        best: tuple[int, int, float, str] | None = None
        hits = index.search(query, _HITS)
        # a title that says no more than the nature, the site and the side, or failing one, no
        # more than those and the words of an unspecified joint ("Unspecified dislocation of
        # right shoulder joint", S43.004: what the Index gives "Dislocation, shoulder")
        allowed = set(query) | _free_ids(index)
        full = [
            h for h in hits if h.coverage >= FULL and need <= index.entries[h.entry].stem_set
        ] or [h for h in hits if index.entries[h.entry].stem_set <= allowed]
        for hit in full:
            entry = index.entries[hit.entry]
            if not is_injury(entry.node) or not need <= entry.stem_set:
                continue
            said = sum(w in index.codeset.records[entry.node].description.lower() for w in marks)
            key = (len(entry.stems), said, hit.bm25, entry.node)
            if best is None or key[:3] > best[:3]:
                best = key
        if best is not None:
            try:
                code = index.resolve(best[3], (seventh,), side)
            except ValueError:
                continue
            if index.codeset.records[code].billable:
                return code
    return None
