"""The demo's English phrase bank: its templates (``PHRASES``) and its genre banks (``BANKS``).

Data only; ``phrases`` says what the fields and the ``{placeholders}`` are.
"""

from __future__ import annotations

from novawrite.providers.demo.phrases import GenreBank, Phrases

PHRASES = Phrases(
    given_names=[
        "Elias",
        "Mara",
        "Jonah",
        "Ada",
        "Rowan",
        "Iris",
        "Tobias",
        "Nell",
        "Caspian",
        "Wren",
        "Silas",
        "Lena",
        "Felix",
        "Juno",
        "Arthur",
        "Clara",
        "Owen",
        "Hazel",
        "Gideon",
        "Maeve",
        "Theo",
        "Ivy",
        "Declan",
        "Rosa",
    ],
    surnames=[
        "Vale",
        "Hart",
        "Calloway",
        "Ashford",
        "Reyes",
        "Quinn",
        "Mercer",
        "Holloway",
        "Sato",
        "Blackwood",
        "Okafor",
        "Lindqvist",
        "Marsh",
        "Devereux",
        "Kane",
        "Winter",
    ],
    someone="an old acquaintance",
    untitled="Untitled",
    a_novel="novel",
    default_hook="A strange affair tied to {item} comes knocking",
    volume_titles=[
        ["The Road to {place}", "{item}", "First Light over {place}", "A Door in {place}"],
        ["{faction}", "Undercurrents", "The Long Game", "The Bargain at {place}"],
        ["The Riddle of {item}", "Fault Lines", "In the Shadow of {faction}", "Half the Truth"],
        ["The Siege of {place}", "All or Nothing", "The Eye of the Storm", "Breaking the Board"],
        ["What Remains", "Endgame at {place}", "The Way Home", "Before Dawn"],
    ],
    volume_summaries=[
        [
            "{hero}'s quiet life in {place} ends the day the story turns: {hook}. Chasing the truth about {item}, {hero} meets {ally} and crosses {foe} for the first time. The volume closes as {hero} learns that {faction} has been watching all along.",
            "{hook}. {hero} means to stay out of it, but {item} drags {hero} to the center of the storm. {mentor} offers a way out, at the price of leaving {place} for a world {hero} does not know.",
        ],
        [
            "{hero} and {ally} leave {place} and fall into the infighting of {faction}. {mentor} teaches {hero} the cost behind {rule}, while {foe} closes in. A defeat costs {hero} something precious, and shows {hero} which road to take.",
            "In {place}, {hero} learns to trust their own judgment, gains allies and makes dangerous enemies. A deal between {faction} and {foe} comes to light, and {hero} sees that {item} is only one piece on a larger board.",
        ],
        [
            "The secret of {item} surfaces, and it is worse than {hero} feared: {foe} is not the only enemy. What {ally} kept hidden breaks them apart, and {hero} goes alone into {place2}, finding, at the bottom, the thread that leads back.",
            "A careful trap ruins {hero}'s name and drives {hero} into hiding in {place2}. {mentor}'s past is laid bare; {hero} starts to doubt everything once believed, and for the first time understands {foe}.",
        ],
        [
            "Every thread leads to {place2}. {hero} and {ally} stand together again, rally the dissenters inside {faction}, and face {foe} in the open. {mentor} keeps an old promise in an unexpected way, and still the outcome hangs by a thread.",
            "{hero} takes the fight to {place2}. After a chain of schemes and betrayals {hero} seizes the initiative, only to face a choice between {item} and the people who matter most.",
        ],
        [
            "The last battle comes to {place2}. {hero} defeats {foe} at the cost of {item} and lays bare the truth behind everything. In the epilogue {hero} returns to {place}; all seems calm, but a new rumor is already traveling.",
            "{hero} sees through {foe}'s final gambit and settles things at {place2}. {ally} and {mentor} find their own endings, the age of {faction} is over, and {hero} at last answers the question the story began with.",
        ],
    ],
    overall_intro="{title} is a work of {genre} in {volumes} volumes and about {chapters} chapters. It opens like this: {hook}. The main line is the contest between {hero} and {foe}; beneath it runs the long design of {faction} and the true origin of {item}.",
    overall_volume="Volume {number}, {title}: {summary}",
    overall_close="The story widens from one corner of {place} to a world in upheaval; at the end, in {place2}, {hero} makes the final choice and every planted thread is paid off.",
    chapter_titles=[
        [
            "Morning in {place}",
            "An Uninvited Guest",
            "A Letter",
            "Old Debts",
            "Arrival at {place}",
            "A Lamp in the Dark",
        ],
        ["Accident", "Testing the Waters", "Rumors", "The Deal", "Between Two Fires", "Envoys of {faction}"],
        ["A Clue to {item}", "The Hidden Room", "An Unlikely Ally", "Whispers", "The Flaw", "Return to {place}"],
        ["Standoff", "Night Raid on {place}", "Blade to Blade", "Backs to the Wall", "{foe} Steps Forward", "The Trap"],
        ["Aftermath", "A New Riddle", "Leaving {place}", "What {ally} Hid", "Gathering Storm", "A Turn of Fortune"],
    ],
    chapter_summaries=[
        [
            "Asking around {place} about {item}, {hero} runs into {ally}. They do not get along, and {ally} leaves with a warning. That night {hero} turns the words over and decides to look closer.",
            "Morning in {place} is ordinary until envoys of {faction} arrive. {hero} realizes they are looking for {item}, plays dumb, and follows them.",
            "{mentor} calls {hero} aside and tells an old story about {item}. Only now does {hero} see how deep this goes.",
        ],
        [
            "{foe} sets a trap in {place}; {hero} nearly walks into it and is saved only by {ally}. Afterwards they argue: keep digging, or back off for now?",
            "{faction} offers a deal: hand over what is known about {item} in exchange for the safety of {hero}'s friends. {hero} agrees on the surface and plans otherwise.",
            "A rumor about {hero} spreads through {place} and every door closes. {ally} traces it to its source, and the source leads to {foe}.",
        ],
        [
            "{hero} and {ally} slip into {place} and find a damaged record of where {item} came from. The last page has been torn out; what remains points to someone no one suspected.",
            "{hero} spots a flaw in {foe}'s plan and works through the night with {mentor} on a counter-move. To test the idea, {hero} takes a risk.",
            "A nobody turns up claiming to know where {item} is. {hero} is wary, but {ally} recognizes who this really is.",
        ],
        [
            "{hero} and {foe} face each other in {place}. In the war of words {foe} lets slip a secret about {hero}'s past; {hero} falters, and holds only because {ally} speaks up.",
            "{faction} raids {place} by night. {hero} and {ally} split up to break out; in the chaos {item} nearly changes hands, and getting it back costs {hero} dearly.",
            "{hero} turns {foe}'s plan around and lures the enemy into a prepared trap. The tables turn, but {foe} has a move in reserve.",
        ],
        [
            "In the lull, {hero} counts the cost and notices that {ally} is hiding something. {hero} says nothing yet. At the chapter's end a familiar figure appears in {place}.",
            "{hero} leaves {place} for {place2}. On the road comes an unsigned letter with a single line in it, and the line is about {item}.",
            "Badly hurt, {mentor} gives {hero} an old keepsake before they part. {hero} understands that the real contest has only begun.",
        ],
    ],
    codas=[
        "Meanwhile, {faction} grows bolder.",
        "From a distance, {foe} watches as if this had all been foreseen.",
        "{hero} remembers {rule}, and goes cold.",
        "It also sows the seed of {ally}'s later choice.",
        "And from {place2} comes news that something is wrong.",
        "A word of advice from {mentor} takes on a new meaning.",
    ],
    roles=["protagonist", "ally", "antagonist", "mentor", "confidant", "rival", "supporting"],
    jobs=["innkeeper", "physician", "storyteller", "courier", "gatekeeper", "clockmaker", "clerk", "ferryman"],
    character_descriptions=[
        "{name} grew up in {place}: unremarkable on the surface, yet tied to {item} in ways no one can explain. {name}'s life changes course the day the story begins: {hook}.",
        "{name} is the friend {hero} makes in {place}: well informed, sharp-tongued, and never the one to step back when it counts.",
        "{name} quietly controls {faction}, leaves no loose ends, and wants {item} badly enough to sacrifice anyone for it.",
        "{name} once belonged to {faction} and has lived in seclusion in {place} for years, keeper of old secrets and of an old debt.",
        "{name} is perceptive and has known {hero} since before any of this began; one of the few people {hero} tells the truth, with secrets of their own.",
        "{name} matches {hero} in age and talent; from their first meeting neither will give an inch.",
        "{name} is a {job} in {place}, seemingly far from the main story, who keeps turning up with the clue that matters.",
    ],
    traits=[
        "resilient",
        "quick-witted",
        "calm",
        "loyal",
        "curious",
        "suspicious",
        "proud",
        "patient",
        "wry",
        "stubborn",
        "decisive",
        "kind",
        "ambitious",
        "cautious",
        "soft-hearted",
    ],
    arcs=[
        "From someone who only wants to protect their own to someone who faces {foe} and carries the truth about {item}.",
        "From flippant bystander to true believer in {hero}'s choices, and paying the price for it.",
        "From puppet master to a player forced into the light, ambition and fear laid bare until the obsession consumes them.",
        "From exile to return, making amends for an old mistake in their own way.",
        "From onlooker to partner, learning to make their own decisions.",
        "From enemy to grudging respect, and a surprising choice in the final battle.",
        "Changes the course of the story almost by accident, and finds a place in it.",
    ],
    relationships=[
        "Bound to {ally} by a debt of life; sworn enemy of {foe}; student of {mentor}.",
        "{hero}'s most trusted companion, with a personal grudge against {foe}.",
        "{hero}'s chief enemy, with old history with {mentor}.",
        "{hero}'s guide, who once knew {foe} well.",
        "{hero}'s confidant, who cannot stand {ally}.",
        "{hero}'s rival, whom {foe} is trying to win over.",
        "Owes {hero} a kindness and secretly carries messages for {ally}.",
    ],
    place_suffixes=[" Ruins", " Outskirts", " Depths"],
    faction_suffixes=[" Remnant", " (Splinter)"],
    rule_suffixes=[" (Addendum)", " (Forbidden)"],
    item_suffixes=[" (Replica)", " (Fragment)"],
    world_descriptions={
        "location": [
            "{name} lies north of {place2}: prosperous on the surface, underneath a meeting place for the eyes and ears of {faction}. Key deals and clashes of the story happen here.",
            "{name} is rarely visited and said to be bound up with {item}. When {hero} first arrives, the place seems to be waiting for someone.",
        ],
        "faction": [
            "{name} works in secret; its members use code names. It has fought {faction} for years and is hunting for {item}.",
            "{name} rose from nothing and now reaches all across {place}; its leader has an unspoken arrangement with {foe}.",
        ],
        "rule": [
            "{name}: in this world it decides who rises and who remains a pawn. Those who break it pay dearly, and {hero}'s story begins with exactly that.",
        ],
        "item": [
            "{name} looks like nothing much, yet comes from the same source as {item}. Whoever holds it sees what others cannot.",
            "{name} is said to have belonged to the founder of {faction}; it changed hands many times and vanished, until it resurfaced in {place}.",
        ],
        "culture": [
            "{name}: a custom long kept around {place}. Outsiders see a festival; those who know see the rules hidden inside it.",
        ],
    },
    event_titles=[
        "Trouble in {place}",
        "{hero} Meets {ally}",
        "The Gathering of {faction}",
        "The Theft of {item}",
        "A Night in {place2}",
        "An Old Case Reopened",
        "The Alliance",
        "The Betrayal",
        "{foe}'s Design",
        "The First Truth",
        "The Eve of Battle",
        "Curtain Fall",
    ],
    event_suffixes=[" (Continued)", " (Aftermath)", " II"],
    time_labels=[
        "The beginning",
        "Three days later",
        "A month later",
        "Autumn, Year 1",
        "Spring, Year 2",
        "Winter, Year 2",
        "Year 3",
        "Years later",
    ],
    event_descriptions=[
        "{hero} witnesses it in {place}; from then on {hero}'s fate is bound to {item}, and {faction} takes notice.",
        "{foe} uses the moment to grow stronger while {ally} investigates quietly and finds that it has to do with {rule}.",
        "{mentor} appears in {place2} and talks with {hero} through the night, telling an old story that changes everything.",
        "{hero} and {foe} clash openly for the first time; both are hurt, and {item} goes missing.",
    ],
    foreshadow_titles=[
        "Where {item} Came From",
        "{mentor}'s Old Wound",
        "The Letter {ally} Hid",
        "The Forbidden Ground of {place}",
        "{foe}'s Other Face",
        "The Old Pact of {faction}",
        "The Unclaimed Keepsake",
        "The Recurring Dream",
    ],
    foreshadow_descriptions=[
        "A detail dropped as atmosphere in the opening, which readers take for scenery; much later it turns out to be the first move of {foe}'s design.",
        "An oddity {hero} notices more than once but never pursues; its payoff changes how {hero} sees {mentor}.",
        "Things {ally} almost says, more than once: a thread to {ally}'s tie with {faction}, paid off as a reversal.",
        "A rumor about {item}, passed off as idle talk early on, which becomes the key to {hero}'s victory over {foe}.",
    ],
    first_openings=[
        "Dawn had barely reached {place} when a frantic knock woke {hero}. The stranger at the door clutched something {hero} had seen only in dreams.",
        "Years later {hero} would still remember that day: a thin rain over {place}, an empty street, and {item} lying at the side of the road.",
    ],
    openings=[
        "The last of what had happened had not yet settled. {hero} had not slept; at first light {hero} opened the window, and the wind from {place} carried something hard to name.",
        "{hero} went over the night again and again, and the more {hero} thought about it, the less it added up. What {ally} had said sounded different now.",
    ],
    summary_bridge="In this chapter: {summary}",
    plant_line="{hero} did not notice the thing that flickered in the corner: the first trace of {clue}.",
    payoff_line="Only now did {hero} understand what {clue} had meant, and at last the pieces fell into one line.",
    body=[
        "{hero} walked the long street of {place} until the voices behind faded. {ally} followed, opening their mouth more than once and saying nothing. At the corner {hero} stopped and looked back the way they had come.",
        "Everyone in {place} had a story about {item}. Some said it bought a lifetime of fortune; others, that no one who saw it came to a good end. {hero} listened all the way and said nothing, filing every version away.",
        "The people of {faction} came sooner than expected. Hidden in the shadows, {hero} watched them search one room after another, heart pounding loudly enough, it seemed, to be heard down the street. {ally} laid a hand on {hero}'s shoulder: wait.",
        "Late at night {hero} sat alone under the lamp and laid out everything learned in the past days. Every step of {foe}'s seemed calculated, except one that made no sense, and that one might be the way in.",
        "When the news from {place2} arrived, no one spoke. {hero} thought of {rule} and understood, for the first time, what it meant: not a restraint but a price.",
        "{ally} finally spoke, about an old matter that seemed to have nothing to do with anything. {hero} listened patiently, and only at the end saw that between that old matter and {item} stood nothing but a thin sheet of paper.",
        "Wind came from the direction of {place}, lifting the fallen leaves. {hero} clenched a fist and slowly let it go. Some things could not be rushed. {foe} was waiting; {hero} could wait too.",
    ],
    dialogue=[
        '"You knew all along, didn\'t you?" {hero} asked quietly.\nAfter a long silence {ally} said, "The more you know, the harder it is to live. I didn\'t want you on this road too."',
        '"{foe} won\'t stop here," said {ally}.\n"I know." {hero} looked into the distance. "So this time we move first."',
        '"Where did you get this?"\n"Found it." {hero} said it lightly, eyes never leaving the other\'s hands.',
        '"You don\'t have to go," said {ally}.\n"I don\'t," {hero} said with a small smile. "But then I\'d spend my whole life wondering."',
    ],
    closings=[
        "Just as {hero} thought it was over for now, something clicked softly outside the window. {hero} turned and saw someone who should not have been there.",
        "That night the lights of {place} went out one by one. Only {hero} knew that the real storm was still to come.",
        "{hero} tucked {item} away and walked into the dark. Behind, someone in the shadows watched it all.",
    ],
)

# The last bank is the everyday one, for any other genre.
BANKS = (
    GenreBank(
        ("fantasy", "epic", "magic", "dragon", "sword", "myth", "fairy"),
        [
            "the Ashen Reach",
            "Highmoor Keep",
            "the Sunken Library",
            "Greywater Crossing",
            "the Thornwood",
            "the Salt Road",
        ],
        [
            "the Order of the Lantern",
            "the Ninefold Court",
            "the Saltborn clans",
            "the Guild of Wardens",
            "the Hollow Crown",
        ],
        ["a cracked moonstone", "the Ember Crown", "a map whose ink moves", "a black iron key", "a bone flute"],
        [
            (
                "The Price of Memory",
                "Every spell is paid for in memory; the greatest mages remember almost nothing of who they were.",
            ),
            (
                "The Oak Oath",
                "No oath sworn beneath the old oak can be broken; those who try are unmade by morning.",
            ),
        ],
        [
            (
                "The Lantern Night",
                "Once a year every window in the realm holds a lantern for the dead, and the dead are said to walk home by its light.",
            )
        ],
    ),
    GenreBank(
        ("sci", "space", "cyber", "dystop", "future", "apocalyp", "mech"),
        [
            "Kepler Station",
            "the Meridian Ring",
            "the dead colony on Tessaly",
            "the Undercity of New Lagos",
            "the array at Vesta",
        ],
        ["the Concord Fleet", "the Helix Corporation", "the Drift Union", "the Archive Council", "Project Echo"],
        [
            "a corrupted black box",
            "the seed vault codes",
            "an AI core with no serial number",
            "a star chart older than the fleet",
            "an obsolete identity chip",
        ],
        [
            (
                "The Jump Ban",
                "No jump drive may fire inside a planet's gravity well; the ban hides an accident the Council buried.",
            ),
            (
                "Gene Grading",
                "A citizen's tier is set by a gene score at birth, and the tier decides where you live and whom you may marry.",
            ),
        ],
        [
            (
                "Homecoming Dark",
                "On the day the fleet returns, every station goes dark for three minutes for those who never came back.",
            )
        ],
    ),
    GenreBank(
        ("myster", "thriller", "crime", "detective", "noir", "horror", "suspense"),
        [
            "Harrow's Lane",
            "the old Ashby Hotel",
            "the county records office",
            "the lighthouse on Gull Point",
            "the night train to Carlisle",
        ],
        [
            "the county police",
            "the Ashby family",
            "the Thursday Club",
            "the harbor syndicate",
            "an anonymous message board",
        ],
        [
            "a pocket watch stopped at 3:17",
            "a diary with pages torn out",
            "a bloodstained ticket stub",
            "an old photograph",
            "a key nobody can place",
        ],
        [
            (
                "The Twenty-Year Limit",
                "A twenty-year-old case is about to pass its limitation date; someone is desperate to reopen it, someone else to let the clock run out.",
            ),
            (
                "The Ashby Rule",
                "Guests of the Ashby Hotel must not leave their rooms after midnight, a rule kept for fifty years for reasons no one remembers.",
            ),
        ],
        [
            (
                "The Drowning Feast",
                "Every autumn the harbor town holds a feast for the sea, and the fishermen say the drowned come home that night.",
            )
        ],
    ),
    GenreBank(
        ("histor", "regency", "victorian", "medieval", "war"),
        [
            "the capital",
            "Ravensworth Hall",
            "the docks at Wapping",
            "the northern border forts",
            "the court at Whitmoor",
        ],
        [
            "the Crown's Intelligencers",
            "House Ravensworth",
            "the East India merchants",
            "the Prince's faction",
            "the Chancery",
        ],
        [
            "the late king's will",
            "half of a signet ring",
            "an embroidered handkerchief",
            "a letter in cipher",
            "a royal warrant",
        ],
        [
            (
                "Primogeniture",
                "Everything passes to the eldest son; a daughter's wit counts for nothing on paper, and for everything in practice.",
            ),
            ("The Season", "The London season decides marriages, fortunes and alliances in a few crowded months."),
        ],
        [
            (
                "Twelfth Night",
                "On Twelfth Night masks are worn and ranks forgotten until dawn, and more than one secret changes hands.",
            )
        ],
    ),
    GenreBank(
        ("contemporary", "romance", "literary", "drama", "urban", "family", "young adult"),
        [
            "Port Ellery",
            "a bookshop on Marlow Street",
            "the old harbor district",
            "Hillcrest High",
            "a rooftop garden downtown",
            "the 24-hour diner",
        ],
        [
            "the Whitcombe family",
            "Calder & Finch",
            "the city newspaper",
            "the harbor development fund",
            "a small law office",
        ],
        [
            "a yellowed contract",
            "a voicemail never deleted",
            "her father's spare key",
            "an anonymous letter",
            "a photograph from ten years ago",
        ],
        [
            (
                "The Buyout Clause",
                "A buyout clause in the family company expires this year; whoever loses it loses everything, and it drags an old debt into the light.",
            ),
            (
                "The Unwritten Rule",
                "In Port Ellery everyone knows the unwritten rule: whoever owns the harbor owns half the town.",
            ),
        ],
        [
            (
                "The Harvest Supper",
                "Every September the old harbor district lays one long table down the street, and for a night old grudges are set aside.",
            )
        ],
    ),
)
