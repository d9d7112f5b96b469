using System.CommandLine;
using System.Text.RegularExpressions;

namespace MiniVmm.Cli;

/// <summary>
/// A command line the parser rejects: one line saying what is wrong, in the words of the option, then where help is
/// — not the whole help text, and not the parser's .NET type names. Exit code 120, as for any other bad input.
/// </summary>
internal static partial class UsageErrors
{
    public static int Report(ParseResult parse, string? message = null)
    {
        message = ConfigFile.InTermsOfTheFile(message ?? (parse.Errors.Count > 0 ? Describe(parse.Errors[0].Message) : "bad command line"));
        Console.Error.WriteLine("minivmm: " + message);
        Console.Error.WriteLine($"Try '{CommandPath(parse)} --help' for more information.");
        return ExitCodes.BadInput;
    }

    public static string Describe(string parserMessage)
    {
        var m = CannotParse().Match(parserMessage);
        if (m.Success)
            return $"{m.Groups["symbol"].Value}: '{m.Groups["value"].Value}' is not {TypeInWords(m.Groups["type"].Value)}";
        var required = RequiredOption().Match(parserMessage);
        if (required.Success) return $"{required.Groups["symbol"].Value} is required";
        var unknown = Unrecognized().Match(parserMessage);
        if (unknown.Success) return $"unknown option or argument '{unknown.Groups["token"].Value}'";
        if (parserMessage.StartsWith("Required command was not provided", StringComparison.Ordinal))
            return "no command given: run, restore, snapshot, monitor or firmware";
        return parserMessage.TrimEnd('.');
    }

    private static string TypeInWords(string type) => type switch
    {
        "System.Int32" => "a whole number (at most 2147483647)",
        "System.Int64" => "a whole number",
        "System.Double" => "a number",
        "System.Boolean" => "true or false",
        _ => "a valid value",
    };

    private static string CommandPath(ParseResult parse)
    {
        var names = new List<string>();
        for (var r = parse.CommandResult; r is not null; r = r.Parent as System.CommandLine.Parsing.CommandResult)
            names.Insert(0, r.Command is RootCommand ? "minivmm" : r.Command.Name);
        return string.Join(' ', names);
    }

    [GeneratedRegex(@"^Cannot parse argument '(?<value>.*)' for (option|command|argument) '(?<symbol>[^']*)' as expected type '(?<type>[^']*)'")]
    private static partial Regex CannotParse();

    [GeneratedRegex(@"^Option '(?<symbol>[^']*)' is required")]
    private static partial Regex RequiredOption();

    [GeneratedRegex(@"^Unrecognized command or argument '(?<token>.*)'")]
    private static partial Regex Unrecognized();
}
