# A whale saying the body it was given.
WHALE = r'''
    \
     \
      \
                    ##        .
              ## ## ##       ==
           ## ## ## ##      ===
       /""""""""""""""""___/ ===
  ~~~ {~~ ~~~~ ~~~ ~~~~ ~~ ~ /  ===- ~~~
       \______ o          __/
        \    \        __/
          \____\______/
'''


def main(request):
    text = request.body.decode("utf-8", "replace").strip() or "..."
    line = "-" * (len(text) + 2)
    return f" {line}\n< {text} >\n {line}{WHALE}"
