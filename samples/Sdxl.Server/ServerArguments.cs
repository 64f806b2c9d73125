using System.Globalization;

namespace Sdxl.Server;

/// <summary>What the process is: gateway and worker in one (<c>all</c>), the HTTP gateway alone, or a GPU worker alone.</summary>
internal enum ServerRole
{
    All,
    Gateway,
    Worker,
}

/// <summary>A command-line error: the process prints it on one stderr line and exits with 2.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>The server's command line (hand-written, as the CLI's: every flag is <c>--name value</c>).</summary>
internal sealed record ServerArguments
{
    public const string Usage = """
        usage: Sdxl.Server [--role all|gateway|worker] [--model DIR] [--device cpu|cuda:N[,cuda:M]]
                           [--urls http://127.0.0.1:PORT] [--cluster localhost|redis://HOST:PORT]
                           [--silo-port P] [--gateway-port G]
                           [--max-batch N] [--max-batch-delay-ms T] [--max-queue Q]
          --role all      (default) HTTP gateway and workers in one process; needs --model, no cluster flag
          --role gateway  HTTP only; jobs run on the cluster's workers (--cluster)
          --role worker   workers for --device on this host, joined to --cluster; needs --model
        """;

    public ServerRole Role { get; init; } = ServerRole.All;

    public string? Model { get; init; }

    public IReadOnlyList<string> Devices { get; init; } = ["cpu"];

    public string Urls { get; init; } = "http://127.0.0.1:5000";

    public string Cluster { get; init; } = "localhost";

    public int SiloPort { get; init; } = 11111;

    public int GatewayPort { get; init; } = 30000;

    public int MaxBatch { get; init; } = 4;

    public int MaxBatchDelayMs { get; init; } = 20;

    public int MaxQueue { get; init; } = 64;

    public bool Help { get; init; }

    /// <summary>Whether the cluster flags were given (they mean nothing to <c>--role all</c>).</summary>
    public bool ClusterGiven { get; init; }

    public static ServerArguments Parse(IReadOnlyList<string> args)
    {
        var result = new ServerArguments();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < args.Count; i++)
        {
            var name = args[i];
            if (name is "--help" or "-h")
            {
                return result with { Help = true };
            }

            if (!name.StartsWith("--", StringComparison.Ordinal))
            {
                throw new UsageException($"unexpected argument '{name}'; flags are --name value");
            }

            if (!seen.Add(name))
            {
                throw new UsageException($"{name} is given twice");
            }

            if (i + 1 >= args.Count)
            {
                throw new UsageException($"{name} needs a value");
            }

            var value = args[++i];
            result = name switch
            {
                "--role" => result with { Role = value switch
                {
                    "all" => ServerRole.All,
                    "gateway" => ServerRole.Gateway,
                    "worker" => ServerRole.Worker,
                    _ => throw new UsageException($"--role must be all, gateway or worker; got '{value}'"),
                } },
                "--model" => result with { Model = value },
                "--device" => result with { Devices = ParseDevices(value) },
                "--urls" => result with { Urls = value },
                "--cluster" => result with { Cluster = ParseCluster(value), ClusterGiven = true },
                "--silo-port" => result with { SiloPort = Int(name, value, 1, 65535), ClusterGiven = true },
                "--gateway-port" => result with { GatewayPort = Int(name, value, 1, 65535), ClusterGiven = true },
                "--max-batch" => result with { MaxBatch = Int(name, value, 1, 64) },
                "--max-batch-delay-ms" => result with { MaxBatchDelayMs = Int(name, value, 0, 60_000) },
                "--max-queue" => result with { MaxQueue = Int(name, value, 1, 100_000) },
                _ => throw new UsageException($"unknown flag {name}"),
            };
        }

        if (result.Role != ServerRole.Gateway && string.IsNullOrEmpty(result.Model))
        {
            throw new UsageException($"--role {result.Role.ToString().ToLowerInvariant()} needs --model DIR");
        }

        if (result.Model is { } model && !Directory.Exists(model))
        {
            throw new UsageException($"--model: the folder '{model}' does not exist");
        }

        return result;
    }

    private static IReadOnlyList<string> ParseDevices(string value)
    {
        var devices = value.Split(',', StringSplitOptions.TrimEntries);
        foreach (var device in devices)
        {
            try
            {
                Sdxl.Net.Runtime.ExecutionProviderOptions.Parse(device);
            }
            catch (FormatException e)
            {
                throw new UsageException($"--device: {e.Message}");
            }
        }

        if (devices.Distinct(StringComparer.Ordinal).Count() != devices.Length)
        {
            throw new UsageException($"--device lists a device twice: '{value}'");
        }

        return devices;
    }

    private static string ParseCluster(string value)
    {
        if (value == "localhost")
        {
            return value;
        }

        if (value.StartsWith("redis://", StringComparison.Ordinal) && Uri.TryCreate(value, UriKind.Absolute, out var uri) && uri.Port > 0)
        {
            return value;
        }

        throw new UsageException($"--cluster must be localhost or redis://HOST:PORT; got '{value}'");
    }

    private static int Int(string name, string value, int min, int max)
    {
        if (!int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) || n < min || n > max)
        {
            throw new UsageException($"{name} must be an integer from {min} to {max}; got '{value}'");
        }

        return n;
    }
}
