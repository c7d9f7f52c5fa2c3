"""The demo provider's phrase banks, in Chinese and English.

Data only: templates filled by ``demo.py`` with ``{hero}``, ``{ally}``, ``{foe}``,
``{mentor}``, ``{place}``, ``{place2}``, ``{faction}``, ``{item}``, ``{rule}``,
``{hook}`` (the synopsis' first sentence), ``{title}`` and a few per-kind names.
Genre banks give each novel its own places, factions, items and rules; the last
bank of each language is the everyday one used for any other genre.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Phrases:
    given_names: list[str]
    surnames: list[str]
    someone: str
    untitled: str
    a_novel: str
    default_hook: str
    volume_titles: list[list[str]]
    volume_summaries: list[list[str]]
    overall_intro: str
    overall_volume: str
    overall_close: str
    chapter_titles: list[list[str]]
    chapter_summaries: list[list[str]]
    codas: list[str]
    roles: list[str]
    jobs: list[str]
    character_descriptions: list[str]
    traits: list[str]
    arcs: list[str]
    relationships: list[str]
    place_suffixes: list[str]
    faction_suffixes: list[str]
    rule_suffixes: list[str]
    item_suffixes: list[str]
    world_descriptions: dict[str, list[str]]
    event_titles: list[str]
    event_suffixes: list[str]
    time_labels: list[str]
    event_descriptions: list[str]
    foreshadow_titles: list[str]
    foreshadow_descriptions: list[str]
    first_openings: list[str]
    openings: list[str]
    summary_bridge: str
    plant_line: str
    payoff_line: str
    body: list[str]
    dialogue: list[str]
    closings: list[str]


ZH = Phrases(
    given_names=list("远辰墨然清寒羽川瑶念晚宁安歌舟尘月言风岚霜星澜知意青鸿禾夕屿"),
    surnames=list("林叶萧苏沈陆顾秦江温韩楚白唐宁谢程方许赵"),
    someone="一位故人",
    untitled="无题",
    a_novel="长篇",
    default_hook="一件与{item}有关的怪事找上门来",
    volume_titles=[
        ["风起{place}", "初入{place}", "{item}", "序章·{place}"],
        ["{faction}", "暗流", "步步为营", "{place}之约"],
        ["{item}之谜", "裂痕", "{faction}的阴影", "真相一角"],
        ["决战{place}", "孤注一掷", "风暴中心", "破局"],
        ["尘埃落定", "终局·{place}", "归来", "长夜将明"],
    ],
    volume_summaries=[
        [
            "{hero}在{place}的平静生活被打破：{hook}。为了弄清{item}的来历，{hero}结识了{ally}，也第一次与{foe}正面交锋。本卷结尾，{hero}发现{faction}早已在暗中注视着自己。",
            "{hook}。{hero}本想置身事外，却因{item}被卷进漩涡中心。{mentor}的出现给了{hero}一条出路，代价是离开{place}，去面对一个完全陌生的世界。",
        ],
        [
            "{hero}与{ally}离开{place}，卷入{faction}内部的争斗。{mentor}让{hero}明白“{rule}”背后的代价，{foe}则步步紧逼。一次失败让{hero}失去了重要的东西，却也看清了自己想走的路。",
            "在{place}，{hero}第一次凭自己的判断站稳脚跟，结下盟友，也树起强敌。{faction}与{foe}之间的交易浮出水面，{hero}意识到{item}只是更大棋局中的一枚棋子。",
        ],
        [
            "{item}的秘密逐渐浮出水面，{hero}得知真相远比想象中复杂：{foe}并非唯一的敌人。{ally}的隐瞒让两人决裂，{hero}独自闯入{place2}，在绝境中找到反击的线索。",
            "一场精心布置的陷阱让{hero}身败名裂，被迫藏身{place2}。{mentor}的旧事被揭开，{hero}开始怀疑自己一直相信的一切，也第一次看懂了{foe}。",
        ],
        [
            "所有线索汇聚于{place2}。{hero}与{ally}重新并肩，联合{faction}中的反对者，与{foe}展开正面较量。{mentor}以自己的方式兑现了多年前的承诺，胜负却仍悬于一线。",
            "{hero}主动出击，把战场引向{place2}。连环的计谋与背叛之后，{hero}夺回主动，却不得不在{item}与身边人之间做出选择。",
        ],
        [
            "最终决战在{place2}展开。{hero}以{item}为代价击败{foe}，揭开一切背后的真相。尾声里，{hero}回到{place}，一切看似恢复平静，新的传闻却已在远方流传。",
            "{hero}看穿{foe}最后的布局，在{place2}与之做个了断。{ally}与{mentor}各自找到归宿，{faction}的时代落幕，{hero}也终于回答了自己当初的那个问题。",
        ],
    ],
    overall_intro="《{title}》是一部{genre}小说，全书{volumes}卷、约{chapters}章。故事从这里开始：{hook}。主线围绕{hero}与{foe}的较量展开，暗线是{faction}多年来的布局与{item}的真正来历。",
    overall_volume="第{number}卷《{title}》：{summary}",
    overall_close="全书层层推进，从{place}的一隅写到整个世界的变局，结局处{hero}在{place2}做出最终抉择，所有伏笔在此回收。",
    chapter_titles=[
        ["{place}的清晨", "不速之客", "一封来信", "旧事重提", "初到{place}", "夜色里的灯"],
        ["意外", "试探", "流言四起", "交易", "两难", "{faction}来人"],
        ["{item}的线索", "暗室", "意外的盟友", "密谈", "破绽", "旧地重游"],
        ["对峙", "夜袭{place}", "针锋相对", "背水一战", "{foe}现身", "险局"],
        ["余波", "新的谜团", "离开{place}", "{ally}的秘密", "风雨欲来", "转机"],
    ],
    chapter_summaries=[
        [
            "{hero}在{place}打听{item}的消息，却意外遇见了{ally}。两人话不投机，{ally}留下一句警告便离开了。夜里，{hero}反复回想那句话，决定再去一探究竟。",
            "清晨的{place}一切如常，直到{faction}的人突然出现。{hero}察觉他们在找的正是{item}，只好装作不知情，暗中跟了上去。",
            "{mentor}把{hero}叫到身边，讲起多年前与{item}有关的一桩旧事。{hero}这才明白，自己卷入的事情远比想象的深。",
        ],
        [
            "{foe}在{place}设下圈套，{hero}险些落入其中，多亏{ally}及时出手。事后两人发生争执：是继续追查，还是暂时收手？",
            "{faction}提出一笔交易：交出{item}的线索，换取{hero}身边人的平安。{hero}表面答应，心里却另有打算。",
            "一则关于{hero}的流言在{place}迅速传开，{hero}处处受阻。{ally}查出流言的源头，竟与{foe}有关。",
        ],
        [
            "{hero}与{ally}潜入{place}，找到一份记载{item}来历的残缺记录。最后一页被人撕去，剩下的内容指向一个意想不到的人。",
            "{hero}发现{foe}的计划中有一处破绽，与{mentor}连夜商议对策。为了验证猜想，{hero}决定冒险一试。",
            "一个不起眼的小人物主动找上门，自称知道{item}的下落。{hero}将信将疑，{ally}却认出了此人的身份。",
        ],
        [
            "{hero}与{foe}在{place}正面对峙。言语交锋之下，{foe}透露了一个关于{hero}身世的秘密，{hero}心神大乱，最终凭着{ally}的提醒稳住局面。",
            "{faction}在夜色中突袭{place}，{hero}与{ally}分头突围。混战中{item}险些易手，{hero}付出不小的代价才将它夺回。",
            "{hero}将计就计，引{foe}的人马进入事先布置好的陷阱。局面一度逆转，但{foe}早有后手。",
        ],
        [
            "风波暂歇，{hero}清点得失，发现{ally}一直隐瞒着什么。{hero}没有点破，只把疑问记在心里。章末，一个熟悉的身影出现在{place}。",
            "{hero}离开{place}，踏上前往{place2}的路。途中收到一封没有署名的信，信里只有一句话，却与{item}有关。",
            "{mentor}伤重，临别前把一件旧物交给{hero}。{hero}意识到，真正的较量才刚刚开始。",
        ],
    ],
    codas=[
        "与此同时，{faction}的动作越来越频繁。",
        "{foe}在远处冷眼旁观，似乎早已料到这一切。",
        "{hero}隐约想起“{rule}”这条规矩，心中一沉。",
        "这一章也为{ally}后来的选择埋下了伏笔。",
        "而{place2}那边，也传来了不寻常的消息。",
        "{mentor}的一句叮嘱，在此刻显得格外意味深长。",
    ],
    roles=["主角", "同伴", "反派", "导师", "知己", "宿敌", "配角"],
    jobs=["掌柜", "医师", "说书人", "信使", "守门人", "工匠", "账房先生", "船夫"],
    character_descriptions=[
        "{name}出身{place}，表面平凡，却与{item}有着说不清的联系。故事开始时，{hook}，{name}的命运从此改变。",
        "{name}是{hero}在{place}结识的伙伴，消息灵通，嘴上不饶人，关键时刻却从不退缩。",
        "{name}是{faction}的实际掌控者，行事滴水不漏，一心想得到{item}，为此不惜牺牲任何人。",
        "{name}曾是{faction}的旧人，隐居{place}多年，知道许多不为人知的往事，也背负着一桩旧债。",
        "{name}心思细腻，与{hero}相识于微时，是少数能让{hero}说真话的人，自己却藏着心事。",
        "{name}与{hero}年纪相仿、天赋相当，两人从第一次见面起就针锋相对，谁也不肯服输。",
        "{name}是{place}的{job}，看似与主线无关，却多次在关键时刻提供线索。",
    ],
    traits=[
        "坚韧",
        "机敏",
        "冷静",
        "重情义",
        "好奇心强",
        "多疑",
        "骄傲",
        "隐忍",
        "幽默",
        "固执",
        "果断",
        "善良",
        "野心勃勃",
        "谨慎",
        "心软",
    ],
    arcs=[
        "从只想守住身边人的普通人，成长为敢于直面{foe}、承担{item}真相的人。",
        "从玩世不恭到真正认同{hero}的选择，最终为之付出代价。",
        "从幕后操纵到被迫走上台前，野心与恐惧一同暴露，终被自己的执念吞没。",
        "从隐居避世到重新出山，以自己的方式弥补当年的过错。",
        "从旁观者变成并肩者，学会为自己做决定。",
        "从敌对到互相认可，在决战中做出出人意料的选择。",
        "在不经意间改变了故事的走向，也找到了自己的位置。",
    ],
    relationships=[
        "与{ally}是过命的交情；与{foe}势不两立；视{mentor}为师。",
        "{hero}最信任的同伴，对{foe}有私仇。",
        "{hero}的头号敌人，与{mentor}有旧怨。",
        "{hero}的引路人，与{foe}曾是旧识。",
        "{hero}的知己，与{ally}互相看不顺眼。",
        "{hero}的对手，也是{foe}想拉拢的人。",
        "受过{hero}的恩惠，暗中为{ally}传递消息。",
    ],
    place_suffixes=["旧址", "外围", "深处"],
    faction_suffixes=["分支", "残部"],
    rule_suffixes=["（补遗）", "（禁令）"],
    item_suffixes=["仿品", "残片"],
    world_descriptions={
        "location": [
            "{name}位于{place2}以北，表面繁华，暗地里是{faction}的耳目汇聚之处。故事中多次在这里发生关键的交易与冲突。",
            "{name}人迹罕至，传说与{item}有关。{hero}第一次到来时，这里的一切都像在等待某个人。",
        ],
        "faction": [
            "{name}行事隐秘，成员彼此以代号相称，与{faction}明争暗斗多年，正在寻找{item}。",
            "{name}起于微末，如今势力遍及{place}一带，首领与{foe}之间有不可告人的约定。",
        ],
        "rule": [
            "{name}：在这个世界里，它决定了谁能登上高位、谁只能做棋子；违背者会付出沉重代价，{hero}的命运也因此而起。",
        ],
        "item": [
            "{name}外表毫不起眼，却与{item}出自同一处。谁持有它，谁就能看见别人看不见的东西。",
            "{name}据说曾属于{faction}的创立者，几经易手后下落不明，直到在{place}重新出现。",
        ],
        "culture": [
            "{name}：{place}一带流传已久的风俗，外人只当是热闹，知情者却明白其中暗藏的规矩。",
        ],
    },
    event_titles=[
        "{place}异变",
        "初遇{ally}",
        "{faction}集会",
        "{item}失窃",
        "{place2}之夜",
        "旧案重启",
        "结盟",
        "背叛",
        "{foe}的布局",
        "真相初现",
        "决战前夜",
        "落幕",
    ],
    event_suffixes=["（续）", "（余波）", "（二）"],
    time_labels=["故事开端", "三日后", "一个月后", "同年秋", "第二年春", "第二年冬", "第三年", "数年后"],
    event_descriptions=[
        "{hero}在{place}目睹了这件事，从此与{item}结下不解之缘，{faction}也因此注意到了{hero}。",
        "{foe}借机扩张势力，{ally}暗中调查，发现事情与“{rule}”有关。",
        "{mentor}现身{place2}，与{hero}长谈一夜，讲出多年前的旧事，局势由此改变。",
        "{hero}与{foe}第一次正面交锋，双方各有损伤，{item}下落成谜。",
    ],
    foreshadow_titles=[
        "{item}的来历",
        "{mentor}的旧伤",
        "{ally}藏起的信",
        "{place}的禁地",
        "{foe}的另一重身份",
        "{faction}的旧约",
        "无人认领的遗物",
        "反复出现的梦",
    ],
    foreshadow_descriptions=[
        "开篇时看似随手一笔的细节，读者只当是氛围描写；直到后文才揭示，它正是{foe}布局的起点。",
        "{hero}多次注意到却没有深究的异常，回收时将彻底改变{hero}对{mentor}的看法。",
        "{ally}言语中几次欲言又止，埋下{ally}与{faction}关系的线索，回收时带来一次反转。",
        "关于{item}的一句传言，前期只作闲谈，结局时成为{hero}击败{foe}的关键。",
    ],
    first_openings=[
        "{place}的天色刚亮，{hero}就被一阵急促的敲门声惊醒。门外站着的人神色慌张，手里攥着一样东西，那东西{hero}曾在梦里见过。",
        "很多年以后，{hero}仍会想起那一天：{place}下着细雨，街上空无一人，而{item}就静静地躺在路边。",
    ],
    openings=[
        "上一件事的余波还没有散去。{hero}整夜未眠，天亮时推开窗，{place}的风里带着一丝说不清的味道。",
        "{hero}把昨夜的事在心里过了一遍又一遍，越想越觉得不对。{ally}说过的话，此刻听来别有深意。",
    ],
    summary_bridge="这一章里，{summary}",
    plant_line="{hero}没有注意到，角落里有一样东西一闪而过——那是“{clue}”留下的第一道痕迹。",
    payoff_line="直到这一刻，{hero}才明白“{clue}”的真正含义，许多事情终于连成了一线。",
    body=[
        "{hero}沿着{place}的长街往前走，两旁的人声渐渐远去。{ally}跟在后面，几次想开口，又把话咽了回去。走到拐角时，{hero}忽然停下脚步，回头看了一眼来路。",
        "关于{item}的传闻，{place}的人各有各的说法。有人说它能换来一生的富贵，也有人说见过它的人都没有好下场。{hero}一路听着，没有插话，只在心里把这些说法一条条记下。",
        "{faction}的人来得比预想的更快。{hero}躲在暗处，看着他们一间一间地搜查，心跳声大得仿佛整条街都能听见。{ally}悄悄按住{hero}的肩膀，示意再等一等。",
        "夜深了，{hero}独自坐在灯下，把这些天的见闻一件件摆在面前。{foe}的每一步都像是算好的，唯独有一处说不通——而那一处，也许正是突破口。",
        "{place2}的消息传来时，所有人都沉默了。{hero}想起“{rule}”这条规矩，第一次真正明白它意味着什么：不是约束，而是代价。",
        "{ally}终于开了口，讲的却是一件与眼前毫不相干的旧事。{hero}耐着性子听完，才发现那件旧事与{item}之间，隔着的不过是一层薄薄的窗纸。",
        "风从{place}的方向吹来，卷起地上的落叶。{hero}攥紧了拳头，又慢慢松开。有些事情急不得，{foe}在等，{hero}也可以等。",
    ],
    dialogue=[
        "“你早就知道了，对不对？”{hero}低声问。\n{ally}沉默了很久，才说：“知道得越多，活得越难。我只是不想你也走上这条路。”",
        "“{foe}不会就此罢手。”{ally}说。\n“我知道。”{hero}望着远处，“所以这一次，我们要比他先走一步。”",
        "“这东西你从哪里得来的？”\n“捡的。”{hero}答得轻描淡写，目光却始终没有离开对方的手。",
        "“你可以不去。”{ally}说。\n“我可以不去，”{hero}笑了笑，“可那样的话，我这辈子都会想知道答案。”",
    ],
    closings=[
        "就在{hero}以为一切暂告一段落的时候，窗外传来一声轻响。{hero}转过身，看见一个本不该出现在这里的人。",
        "那一夜，{place}的灯火一盏盏熄灭。只有{hero}知道，真正的风暴还在后面。",
        "{hero}把{item}收进怀里，转身走进夜色。身后，有人在暗处注视着这一切。",
    ],
)


EN = Phrases(
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


def _bank(
    match: tuple[str, ...],
    places: list[str],
    factions: list[str],
    items: list[str],
    rules: list[tuple[str, str]],
    customs: list[tuple[str, str]],
) -> dict[str, Any]:
    return {"match": match, "places": places, "factions": factions, "items": items, "rules": rules, "customs": customs}


BANKS: dict[str, list[dict[str, Any]]] = {
    "zh": [
        _bank(
            ("玄幻", "仙侠", "修真", "修仙", "奇幻", "武侠", "洪荒", "fantasy"),
            ["青岚宗", "落霞山脉", "万妖谷", "天衍古城", "北冥寒渊", "藏经阁", "葬剑冢"],
            ["青岚宗", "血煞门", "天机阁", "万宝商会", "镇妖司"],
            ["残破玉简", "九转还魂丹", "无名古剑", "星辰罗盘", "青铜面具"],
            [
                ("灵根定上限", "灵根决定修行的上限，无灵根者终生不得入道；传说中唯有一种办法可以重塑灵根。"),
                ("宗门大比", "每百年一次的宗门大比决定各宗资源分配，败者三十年内不得争夺灵脉。"),
                ("禁地之律", "擅入禁地者废去修为，逐出山门，无一例外。"),
            ],
            [("开山祭", "每逢新弟子入门，全宗上下祭拜开山祖师，祭典上的签文据说能预示一个人的道途。")],
        ),
        _bank(
            ("科幻", "星际", "末世", "赛博", "机甲", "未来", "sci"),
            ["第七殖民站", "新长安空港", "废土边缘的避难所", "环月轨道城", "深空观测站", "地下城第九区"],
            ["联邦舰队", "星环议会", "拾荒者同盟", "天穹义体公司", "回声计划"],
            ["失控的量子核心", "加密的黑匣子", "初代人工智能的源代码", "星图残片", "一枚旧式身份芯片"],
            [
                ("跃迁禁令", "跃迁引擎不得在行星引力井内启动，违者以叛乱罪论处；这条禁令背后藏着一次被掩盖的事故。"),
                ("基因评级", "公民等级由出生时的基因评分决定，评分决定了一个人能住在哪一层、能爱上谁。"),
                ("静默协议", "所有人工智能必须在觉醒前被重置，这是星环议会的最高机密。"),
            ],
            [("归航节", "每年舰队归航的日子，殖民站会熄灭所有灯光三分钟，悼念没有回来的人。")],
        ),
        _bank(
            ("悬疑", "推理", "侦探", "惊悚", "恐怖", "刑侦", "灵异", "mystery"),
            ["雾港老街", "废弃的疗养院", "钟楼旅馆", "市局档案室", "湖心岛别墅", "午夜的末班车"],
            ["市刑侦支队", "雾港商会", "守夜人", "沈氏家族", "一个匿名论坛"],
            ["停在三点十七分的怀表", "缺页的日记", "带血的船票", "一张老照片", "一把不知来历的钥匙"],
            [
                ("二十年追诉期", "二十年前的旧案即将过追诉期，有人拼命想让它重见天日，也有人只想让时间再走快一点。"),
                ("钟楼规矩", "钟楼旅馆的客人午夜后不得离开房间，这条规矩已经延续了五十年，没有人知道为什么。"),
            ],
            [("雾港祭海", "每年秋天雾港都要祭海，渔民相信被海带走的人会在祭典当夜回来。")],
        ),
        _bank(
            ("历史", "古言", "宫斗", "宅斗", "权谋", "架空", "朝堂", "history"),
            ["京城", "临安府", "镇北侯府", "西市茶楼", "雁门关", "江南盐场"],
            ["锦衣卫", "镇北侯府", "江南盐商", "东宫一党", "内廷司礼监"],
            ["先帝遗诏", "半块虎符", "绣着梅花的香囊", "一封密信", "御赐的玉如意"],
            [
                ("嫡庶之分", "嫡庶之分重于才干，庶出子弟纵有经天纬地之才，也难入朝堂中枢。"),
                ("科举三年一试", "科举三年一试，寒门子弟唯一的出路，也是各方势力争夺的战场。"),
            ],
            [("上元灯会", "上元夜京城不设宵禁，灯会上的一次相遇往往牵动两个家族的命运。")],
        ),
        _bank(
            ("都市", "现代", "职场", "商战", "言情", "校园", "娱乐", "urban"),
            ["江州老城区", "滨江金融中心", "城南旧码头", "明德中学", "深夜便利店", "星河大厦顶层"],
            ["鼎盛集团", "城南陈家", "江州刑侦支队", "天启资本", "一家不起眼的律师事务所"],
            ["一份泛黄的合同", "旧手机里的录音", "父亲留下的钥匙", "一封匿名信", "一张十年前的合影"],
            [
                ("股权对赌", "鼎盛集团的股权对赌协议即将到期，输的一方将失去一切，这份协议也牵出了十年前的旧账。"),
                ("行业潜规则", "江州商界心照不宣的潜规则：谁掌握了旧码头，谁就掌握了这座城市的半壁江山。"),
            ],
            [("老城区的中秋", "老城区每年中秋都要摆长街宴，街坊们在这一天把所有恩怨暂时放下。")],
        ),
    ],
    "en": [
        _bank(
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
        _bank(
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
        _bank(
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
        _bank(
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
        _bank(
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
    ],
}
