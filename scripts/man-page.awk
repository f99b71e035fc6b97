# Tidies a man page as swift-argument-parser's generate-manual writes it
# (mdoc), for scripts/package and scripts/install alike:
# - whatis wants the page's own name in NAME (sixteen.server); the rest of
#   the page keeps the command as typed (sixteen server). Pass -v page=NAME.
# - a blank line (between paragraphs of a command's discussion) is not mdoc:
#   groff warns "Empty input line" (and lintian with it); .Pp is the paragraph break.
/^\.Nm "/ && !named { shown = substr($0, 5); print ".Nm " page; named = 1; next }
/^\.Nm$/ && shown != "" { print ".Nm " shown; next }
/^$/ { print ".Pp"; next }
{ print }
