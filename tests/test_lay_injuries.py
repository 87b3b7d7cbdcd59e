"""Injuries told in a patient's own words: the injury and its external cause (injuries.py).

Each case names its source: the ICD-10-CM tabular list title of the expected code (FY2026) or the
Official Guidelines section (I.C.19 injuries, I.C.20 external causes; I.C.20.a: an external
cause code goes with the injury it explains and is never principal; definitions of V00-V99: a
vehicle accident is assumed to be on the public highway, a traffic accident, unless another place
is specified; I.A.4: the placeholder X).
"""

import pytest

from drg.codeset.catalog import shipped_catalog
from worker.coders.retrieval.coder import RetrievalCoder
from worker.coders.retrieval.config import RetrievalSettings
from worker.coders.retrieval.injuries import LayInjuries, is_external_cause, lay_injuries


@pytest.fixture(scope="module")
def coder() -> RetrievalCoder:
    coder = RetrievalCoder(RetrievalSettings())
    coder.load()
    return coder


def codes(coder: RetrievalCoder, narrative: str, release: str = "2026-04") -> tuple[str, ...]:
    return coder.code_one(narrative, release=release).codes


# (narrative, injury, external cause); each code with its tabular title
CASES = [
    # S82.209A Unspecified fracture of shaft of unspecified tibia; V13.4XXA Pedal cycle driver
    # injured in collision with car, pick-up truck or van in traffic accident (traffic by
    # default: V00-V99 definitions)
    ("I was cycling and a car ran over my leg. My tibia is fractured.", "S82209A", "V134XXA"),
    # S61.451A Open bite of right hand; W54.0XXA Bitten by dog
    ("A dog bit my right hand.", "S61451A", "W540XXA"),
    # S61.251A Open bite of left index finger without damage to nail; W55.01XA Bitten by cat
    ("My cat bit my left index finger.", "S61251A", "W5501XA"),
    # S81.851A Open bite, right lower leg; W54.0XXA Bitten by dog
    ("I was bitten by my neighbor's dog on the right leg.", "S81851A", "W540XXA"),
    # Index: Scratch - see Abrasion. S40.811A Abrasion of right upper arm; W55.03XA Scratched
    # by cat
    ("A cat scratched my right arm.", "S40811A", "W5503XA"),
    # no "Scratched by dog" title: W54.8XXA Other contact with dog; S00.81XA Abrasion of other
    # part of head (Index: Abrasion, face S00.81)
    ("The dog scratched my face.", "S0081XA", "W548XXA"),
    # S61.259A Open bite of unspecified finger without damage to nail; W53.11XA Bitten by rat
    ("A rat bit my finger.", "S61259A", "W5311XA"),
    # S22.49XA Multiple fractures of ribs, unspecified side; W55.12XA Struck by horse
    ("A horse kicked me in the chest and I broke two ribs.", "S2249XA", "W5512XA"),
    # S62.102A Fracture of unspecified carpal bone, left wrist; W01.0XXA Fall on same level from
    # slipping, tripping and stumbling without subsequent striking against object
    ("I slipped on the wet floor and broke my left wrist.", "S62102A", "W010XXA"),
    # S93.401A Sprain of unspecified ligament of right ankle; W10.9XXA Fall (on) (from)
    # unspecified stairs and steps
    ("I fell down the stairs and hurt my right ankle. It is sprained.", "S93401A", "W109XXA"),
    # S72.001A Fracture of unspecified part of neck of right femur; W11.XXXA Fall on and from
    # ladder (placeholder X: I.A.4)
    ("I fell off a ladder and broke my right hip.", "S72001A", "W11XXXA"),
    # S70.02XA Contusion of left hip; W06.XXXA Fall from bed
    ("I fell out of bed and bruised my left hip.", "S7002XA", "W06XXXA"),
    # S32.009A Unspecified fracture of unspecified lumbar vertebra; W13.2XXA Fall from, out of or
    # through roof
    ("I fell from the roof and broke my back.", "S32009A", "W132XXA"),
    # S92.002A Unspecified fracture of left calcaneus; W17.89XA Other fall from one level to
    # another
    ("I fell from a height of 3 meters and fractured my left heel.", "S92002A", "W1789XA"),
    # S01.81XA Laceration without foreign body of other part of head (Index: Laceration,
    # forehead); W01.190A Fall on same level from slipping, tripping and stumbling with
    # subsequent striking against furniture
    (
        "I tripped over the cat and fell and hit my head on the table. "
        "I have a cut on my forehead.",
        "S0181XA",
        "W01190A",
    ),
    # S61.012A Laceration without foreign body of left thumb without damage to nail;
    # W26.0XXA Contact with knife
    ("I cut my left thumb with a kitchen knife.", "S61012A", "W260XXA"),
    # S91.311A Laceration without foreign body, right foot; W25.XXXA Contact with sharp glass
    ("I stepped on a piece of glass and cut my right foot.", "S91311A", "W25XXXA"),
    # T23.001A Burn of unspecified degree of right hand, unspecified site; X15.0XXA Contact with
    # hot stove (kitchen)
    ("I burned my right hand on the stove.", "T23001A", "X150XXA"),
    # T22.012A Burn of unspecified degree of left forearm; X10.0XXA Contact with hot drinks
    ("I spilled hot coffee on my left forearm and burned it.", "T22012A", "X100XXA"),
    # S02.2XXA Fracture of nasal bones; Y04.0XXA Assault by unarmed brawl or fight
    ("Someone punched me in the face and broke my nose.", "S022XXA", "Y040XXA"),
    # S01.511A Laceration without foreign body of lip; Y04.0XXA Assault by unarmed brawl or fight
    ("I was punched in the mouth and cut my lip.", "S01511A", "Y040XXA"),
    # S71.132A Puncture wound without foreign body, left thigh; X99.1XXA Assault by knife
    ("Someone stabbed me in the left thigh with a knife.", "S71132A", "X991XXA"),
    # S02.2XXA Fracture of nasal bones; W21.03XA Struck by baseball
    ("I was hit by a baseball and my nose is broken.", "S022XXA", "W2103XA"),
    # S60.011A Contusion of right thumb without damage to nail; W23.0XXA Caught, crushed,
    # jammed, or pinched between moving objects
    ("I got my finger caught in the car door. My right thumb is bruised.", "S60011A", "W230XXA"),
    # S42.002A Fracture of unspecified part of left clavicle; V47.5XXA Car driver injured in
    # collision with fixed or stationary object in traffic accident
    ("I was driving my car and hit a tree. I broke my left collarbone.", "S42002A", "V475XXA"),
    # S13.4XXA Sprain of ligaments of cervical spine; V44.6XXA Car passenger injured in
    # collision with heavy transport vehicle or bus in traffic accident
    (
        "I was a passenger in a car that crashed into a truck. My neck is sprained.",
        "S134XXA",
        "V446XXA",
    ),
    # S13.4XXA; V43.54XA Car driver injured in collision with van in traffic accident
    ("I was driving and a van hit my car. I have a sprained neck.", "S134XXA", "V4354XA"),
    # S72.92XA Unspecified fracture of left femur; V03.10XA Pedestrian on foot injured in
    # collision with car, pick-up truck or van in traffic accident
    (
        "I was walking across the street when a car hit me. My left femur is broken.",
        "S7292XA",
        "V0310XA",
    ),
    # S62.101A Fracture of unspecified carpal bone, right wrist; V28.49XA Other motorcycle driver
    # injured in noncollision transport accident in traffic accident
    ("I fell off my motorcycle and fractured my right wrist.", "S62101A", "V2849XA"),
    # S42.002A; V11.4XXA Pedal cycle driver injured in collision with other pedal cycle in
    # traffic accident
    (
        "I was riding my bike and another cyclist crashed into me. I broke my left collarbone.",
        "S42002A",
        "V114XXA",
    ),
    # S80.01XA Contusion of right knee; V49.9XXA Car occupant (driver) (passenger) injured in
    # unspecified traffic accident
    ("I was in a car accident and my right knee is bruised.", "S8001XA", "V499XXA"),
    # S40.011A Contusion of right shoulder; V73.6XXA Passenger on bus injured in collision with
    # car, pick-up truck or van in traffic accident
    (
        "I was a passenger on a bus that hit a car and I bruised my right shoulder.",
        "S40011A",
        "V736XXA",
    ),
    # S61.411A Laceration without foreign body of right hand; W25.XXXA Contact with sharp glass;
    # the negated fall is not coded (no W00-W19)
    ("I did not fall. I cut my right hand on a piece of glass.", "S61411A", "W25XXXA"),
    # Index "Fracture, pelvis S32.9-": S32.9XXA Fracture of unspecified parts of lumbosacral
    # spine and pelvis; V03.10XA Pedestrian on foot injured in collision with car, pick-up
    # truck or van in traffic accident (struck while walking: a pedestrian, V00-V99 definitions)
    (
        "I was hit by a car while walking across the street. My pelvis is fractured.",
        "S329XXA",
        "V0310XA",
    ),
    # S30.0XXA Contusion of lower back and pelvis; W18.2XXA Fall in (into) shower or empty
    # bathtub
    ("I slipped in the shower and bruised my pelvis.", "S300XXA", "W182XXA"),
    # Index "Fracture, coccyx S32.2-": S32.2XXA Fracture of coccyx; W00.0XXA Fall on same level
    # due to ice and snow
    ("I fell on the ice and fractured my tailbone.", "S322XXA", "W000XXA"),
    # S82.92XA Unspecified fracture of left lower leg; V04.10XA Pedestrian on foot injured in
    # collision with heavy transport vehicle or bus in traffic accident
    ("I was hit by a bus while crossing the road and broke my left leg.", "S8292XA", "V0410XA"),
    # Index "Dislocation, shoulder S43.00-": S43.004A Unspecified dislocation of right shoulder
    # joint; W19.XXXA Unspecified fall
    ("I dislocated my right shoulder when I fell at home.", "S43004A", "W19XXXA"),
    # Index "Dislocation, elbow S53.10-": S53.105A Unspecified dislocation of left ulnohumeral
    # joint
    ("I fell and dislocated my left elbow.", "S53105A", "W19XXXA"),
    # Index "Tear, ligament - see Sprain": S83.91XA Sprain of unspecified site of right knee;
    # V00.321A Fall from snow-skis (a pedestrian conveyance, chapter 20 V00)
    ("I fell while skiing and tore the ligament in my right knee.", "S8391XA", "V00321A"),
    # Index "Injury, head S09.90": S09.90XA Unspecified injury of head; W06.XXXA Fall from bed
    ("I fell out of bed and hit my head.", "S0990XA", "W06XXXA"),
    # Index "Whiplash injury S13.4": S13.4XXA Sprain of ligaments of cervical spine, and no
    # unspecified injury of the neck (S19.9) beside it; V44.6XXA Car passenger injured in
    # collision with heavy transport vehicle or bus in traffic accident
    (
        "I was a passenger in a car that hit a truck; my neck hurts and I have a whiplash.",
        "S134XXA",
        "V446XXA",
    ),
    # S42.309A Unspecified fracture of shaft of humerus, unspecified arm; V80.010A Animal-rider
    # injured by fall from or being thrown from horse in noncollision accident (a transport
    # accident, not W19)
    ("I fell from my horse and broke my arm.", "S42309A", "V80010A"),
    # a burn by its depth when told (I.C.19.d): T22.211A Burn of second degree of right
    # forearm, not T22.011A of unspecified degree; X15.0XXA Contact with hot stove (kitchen)
    (
        "I burned my right forearm on the stove while cooking, second degree.",
        "T22211A",
        "X150XXA",
    ),
    # a vehicle that "slammed into" or "turned into" the person collided (V00-V99: a transport
    # accident on a public highway is traffic): V43.53XA Car driver injured in collision with
    # pick-up truck in traffic accident; V13.4XXA Pedal cycle driver injured in collision with
    # car, pick-up truck or van in traffic accident
    (
        "I was driving my car on the highway when a pickup truck slammed into my side; "
        "I broke my right wrist.",
        "S62101A",
        "V4353XA",
    ),
    (
        "I was riding my bike on the street when a car turned into me; I broke my left wrist.",
        "S62102A",
        "V134XXA",
    ),
    # a bone's part told after it: the shaft (S42.02- "Fracture of shaft of clavicle",
    # displaced by default, I.C.19.c.1: S42.022A; S72.3- shaft of femur: S72.301A); the thigh
    # bone is the femur
    (
        "I was riding my bike on the street when a car turned into me; I broke my left "
        "collarbone, the middle part.",
        "S42022A",
        "V134XXA",
    ),
    (
        "I fell off the roof and broke my right thigh bone in the middle of the shaft.",
        "S72301A",
        "W132XXA",
    ),
    # the end of a long bone told by the joint it is near: the lower end of the radius
    # (S52.502A Unspecified fracture of the lower end of left radius; W11.XXXA Fall from ladder)
    (
        "I fell off a ladder and broke the end of my left radius near the wrist.",
        "S52502A",
        "W11XXXA",
    ),
    # a forearm bone with no part told: the forearm (Index: Fracture, radius - see also
    # Fracture, forearm: S52.92XA Unspecified fracture of left forearm)
    ("I fell and broke my left radius.", "S5292XA", "W19XXXA"),
    # a side told after the site: "three ribs on my left side" (S22.42XA Multiple fractures of
    # ribs, left side); V43.53XA Car driver injured in collision with pick-up truck, traffic
    (
        "I was driving my car and a pickup truck smashed into my door. I broke three ribs on my "
        "left side.",
        "S2242XA",
        "V4353XA",
    ),
    # "the back of my calf" is the calf's, not the back (S81.851A Open bite, right lower leg;
    # W54.0XXA Bitten by dog)
    ("My neighbor's dog bit me on the back of my right calf.", "S81851A", "W540XXA"),
    # the nature told sentences after the account's one site, its depth with it, and the back
    # of the hand a site of the burn titles: T23.262A Burn of second degree of back of left
    # hand (I.C.19.d: burns by depth); X10.2XXA Contact with fats and cooking oils
    (
        "Hot grease from the skillet spattered onto the back of my left hand. By evening it had "
        "blistered, and the urgent care doctor called it a second-degree burn.",
        "T23262A",
        "X102XXA",
    ),
    # a tool "bit into" the thigh: its cut, no open bite without a biter, and the tool's slip
    # is no fall: S71.111A Laceration without foreign body, right thigh; W27.0XXA Contact with
    # workbench tool (inclusion term: Contact with axe)
    (
        "My hatchet slipped while I was chopping kindling and bit into my right thigh, a deep "
        "gash.",
        "S71111A",
        "W270XXA",
    ),
    # W55.32XA Struck by other hoof stock (inclusion terms: Gored by goat, Gored by ram);
    # S52.92XA Unspecified fracture of left forearm
    ("The ram rammed me against the fence and I broke my left forearm.", "S5292XA", "W5532XA"),
    # a fall from a snowboard in its riders' words: V00.311A Fall from snowboard; S62.102A
    # Fracture of unspecified carpal bone, left wrist
    ("I took a spill on my snowboard and broke my left wrist.", "S62102A", "V00311A"),
    # V80.010A Animal-rider injured by fall from or being thrown from horse in noncollision
    # accident; S42.001A Fracture of unspecified part of right clavicle
    ("The pony bucked and threw me off; I broke my right collarbone.", "S42001A", "V80010A"),
    # a dog told by its breed: S61.451A Open bite of right hand; W54.0XXA Bitten by dog
    (
        "My neighbor's German shepherd bit me on the back of my right hand at the fence.",
        "S61451A",
        "W540XXA",
    ),
    # blisters of a burn are its second degree (Index: Blister, due to burn - see Burn, by
    # site, second degree), not a nonthermal blister (S50.822A): T22.212A Burn of second degree
    # of left forearm; X15.0XXA Contact with hot stove (kitchen)
    (
        "I leaned on the stovetop while a burner was on and burned my left forearm. It's "
        "covered in big blisters.",
        "T22212A",
        "X150XXA",
    ),
    # an ankle's bones told broken by their count (Index: Fracture, ankle, bimalleolar
    # S82.84-, trimalleolar S82.85-): S82.842A Displaced bimalleolar fracture of left lower
    # leg, W00.0XXA Fall on same level due to ice and snow; S82.851A, W10.9XXA Fall (on)
    # (from) other and unspecified stairs and steps
    (
        "I slipped on the ice on my driveway and my left ankle snapped. The x-ray showed both "
        "ankle bones are broken.",
        "S82842A",
        "W000XXA",
    ),
    ("I fell down the stairs and broke all three bones in my right ankle.", "S82851A", "W109XXA"),
    # a follow-up visit: 7th character D, subsequent encounter, for the injury and its cause
    # (I.C.19.a, I.C.20.a.2): S62.101D; W00.0XXD Fall on same level due to ice and snow
    (
        "I am here for a follow-up visit for my broken right wrist. I fell on the ice last month.",
        "S62101D",
        "W000XXD",
    ),
]


@pytest.mark.parametrize(("narrative", "injury", "cause"), CASES)
def test_lay_injury_and_external_cause(
    coder: RetrievalCoder, narrative: str, injury: str, cause: str
) -> None:
    coded = codes(coder, narrative)
    assert injury in coded
    assert cause in coded
    # one external cause of the mechanism told, never principal (I.C.20.a)
    assert [c for c in coded if is_external_cause(c)] == [cause]
    assert not is_external_cause(coded[0])


def test_no_chronic_musculoskeletal_code_beside_an_acute_injury(coder: RetrievalCoder) -> None:
    # a current injury is coded to chapter 19, chapter 13 holding chronic and recurrent
    # conditions (Official Guidelines I.C.13.b): training documents about ankles suggest
    # M89.07- (algoneurodystrophy, ankle and foot), which the narrative never names.
    # S93.401A Sprain of unspecified ligament of right ankle; W10.1XXA Fall (on) (from)
    # sidewalk curb
    coded = codes(coder, "I tripped over a curb and sprained my right ankle.")
    assert coded == ("S93401A", "W101XXA")
    # a musculoskeletal condition the narrative names stays beside the injury: M17.11
    # Unilateral primary osteoarthritis, right knee
    coded = codes(
        coder, "Primary osteoarthritis of the right knee. I fell and bruised my left hip."
    )
    assert "M1711" in coded


def test_negated_fall_gives_nothing(coder: RetrievalCoder) -> None:
    # NegEx scope (context.py): "did not fall" is no fall
    assert codes(coder, "I did not fall.") == ()
    assert codes(coder, "No fall. I have a cut on my right hand.") == ("S61411A",)


def test_an_account_with_no_mechanism_gets_its_injury(coder: RetrievalCoder) -> None:
    # a patient's own words name the injury (S93.409A Sprain of unspecified ligament of
    # unspecified ankle), principal; no musculoskeletal code the learned evidence reads in
    # "ankle" beside it (I.C.13.b: a current injury is coded from chapter 19)
    coded = codes(coder, "I twisted my ankle playing soccer.")
    assert coded[0] == "S93409A"
    assert not any(c.startswith("M") for c in coded)


def test_external_cause_only_with_an_injury(coder: RetrievalCoder) -> None:
    # chapter 20 codes are secondary to an injury or condition (I.C.20): a fall alone, with no
    # injury coded, gives no W-code
    assert not any(is_external_cause(c) for c in codes(coder, "I slipped in the kitchen."))


def test_fy2027_claims_get_codes_of_their_release(coder: RetrievalCoder) -> None:
    release = "2026-10"
    codeset = shipped_catalog().codeset(release)
    for narrative, injury, cause in CASES[:3]:
        coded = codes(coder, narrative, release)
        assert coded
        assert all(codeset.records[c].billable for c in coded)
        assert injury in coded
        assert cause in coded


def test_every_title_of_the_tables_is_a_code_of_both_releases() -> None:
    from worker.coders.retrieval.injuries import FALLS, OBJECTS, _titles

    catalog = shipped_catalog()
    for release in catalog.releases:
        titles = _titles(catalog.codeset(release))
        missing = [m.title for m in (*FALLS, *OBJECTS) if m.title.lower() not in titles]
        assert missing == [], release


def test_lay_injuries_alone() -> None:
    codeset = shipped_catalog().codeset("2026-04")
    found = lay_injuries("A dog bit my right hand.", codeset)
    assert found.injuries == ("S61451A",)
    assert found.external_causes == ("W540XXA",)
    # no mechanism told: a patient's own account ("my") is still read, S60.221A contusion of
    # right hand, with no external cause; clinical words without one are left to the coder
    assert lay_injuries("My right hand is bruised.", codeset) == LayInjuries(("S60221A",), ())
    assert lay_injuries("Contusion of the right hand.", codeset) == LayInjuries((), ())


def test_a_part_of_a_bone_is_no_body_site() -> None:
    """ "femoral neck" is the neck of the femur (S72.0-), never a fracture of the neck (S12.9,
    cervical spine)."""
    codeset = shipped_catalog().codeset("2026-04")
    found = lay_injuries("Hip fracture after a fall at home. Left femoral neck fracture.", codeset)
    assert found.injuries
    assert all(code.startswith("S72") for code in found.injuries), found


@pytest.mark.parametrize(
    ("narrative", "toxic_effect"),
    [
        # T63.441A Toxic effect of venom of bees, accidental (unintentional)
        ("Stung by a bee on my left arm, now it is swollen.", "T63441A"),
        # T63.461A ... of wasps; T63.301A Toxic effect of unspecified spider venom, accidental
        ("A wasp stung me on the neck.", "T63461A"),
        ("I was bitten by a spider on my right leg.", "T63301A"),
        # T63.621A Toxic effect of contact with other jellyfish, accidental
        ("Stung by a jellyfish while swimming.", "T63621A"),
    ],
)
def test_a_venomous_sting_or_bite_is_its_toxic_effect(
    coder: RetrievalCoder, narrative: str, toxic_effect: str
) -> None:
    # T63 names the animal and the intent (accidental): no chapter 20 code goes with a toxic
    # effect (Official Guidelines I.C.20.a.9); never a bite of a nonvenomous animal (W57)
    coded = codes(coder, narrative)
    assert coded[0] == toxic_effect
    assert not any(is_external_cause(c) for c in coded)


def test_broken_glass_is_no_fracture(coder: RetrievalCoder) -> None:
    # S61.412A Laceration without foreign body of left hand; W25.XXXA Contact with sharp glass
    coded = codes(coder, "I cut my left hand on broken glass.")
    assert coded == ("S61412A", "W25XXXA")


@pytest.mark.parametrize(
    ("narrative", "expected"),
    [
        # a subdural hemorrhage told with an injury is traumatic (Index: Hemorrhage, subdural,
        # traumatic S06.5X-; I62 Excludes1 traumatic), its 6th character the loss of
        # consciousness as told: denied 0, told 9, not told A (status unknown)
        (
            "I fell off a ladder. The CT showed a small subdural bleed. I never passed out.",
            ("S065X0A", "W11XXXA"),
        ),
        ("Subdural hematoma after a fall.", ("S065XAA", "W19XXXA")),
        ("Assaulted, lost consciousness; CT: subarachnoid hemorrhage.", ("S066X9A",)),
        # no injury told, or told spontaneous: nontraumatic
        ("Spontaneous subdural hematoma after a fall.", ("I6200",)),
        ("Subarachnoid hemorrhage from a ruptured aneurysm.", ("I609",)),
    ],
)
def test_an_intracranial_hemorrhage_told_with_an_injury_is_traumatic(
    coder: RetrievalCoder, narrative: str, expected: tuple[str, ...]
) -> None:
    got = coder.code_one(narrative, release="2026-04").codes
    assert got[: len(expected)] == expected
    assert "S0990XA" not in got  # S09.90 unspecified injury of head says no more (I.A.9.b)
