"""Words too common to be a topic, in English and Spanish (the languages reflib ships), plus the
words every reference chat has (greetings, thanks, "library"). Used by the daily report's
term-frequency topics."""


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


ENGLISH = _words(
    """
    a about above after again against all also am an and any anything are aren't as at be
    because been before being below between both but by bye can can't cannot could couldn't did
    didn't do does doesn't doing don't down during each else few find for from further get good
    got great had hadn't has hasn't have haven't having he hello help her here hers herself hey
    hi him himself his how i i'd i'll i'm i've if in into is isn't it it's its itself just know
    let let's like look looking lot may me might more most much must my myself need no nor not
    now of off ok okay on once one only or other ought our ours ourselves out over own please
    really right same see shall she should shouldn't so some someone something still such sure
    than thank thanks that that's the their theirs them themselves then there there's these they
    they're this those through to too under until up us very want was wasn't way we we're well
    were weren't what what's when where which while who whom why will with won't would wouldn't
    yes yet you you'd you'll you're you've your yours yourself yourselves
    """
)

SPANISH = _words(
    """
    a adiós al algo algunas algunos ante antes buenas bueno buenos busco como con contra cual
    cuando de del desde donde durante días e el ella ellas ellos en entre era eran es esa esas
    ese eso esos esta estaba estado estamos estan estar este esto estos estoy están favor fue
    fueron gracias ha había han hasta hay hola la las le les lo los me mi mis mucho muy más nada
    necesito ni no noches nos nosotros o os otra otro para pero poco por porque puede pueden
    puedo que quería quien quiero qué saber se sea ser si sido sin sobre sois somos son soy su
    sus sí también tanto tardes te tengo tiene tienen todo todos tu tus tú un una uno unos usted
    ustedes vale vosotros y ya yo
    """
)

CHAT = _words(
    """
    biblioteca bibliotecaria bibliotecario book books chat librarian libraries library libro
    libros pregunta preguntas question questions
    """
)

STOP_WORDS = ENGLISH | SPANISH | CHAT
