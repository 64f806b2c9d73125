using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Sdxl.Net.Tests;

/// <summary>A built sample started as a process (loopback only), with its output captured for failure messages.</summary>
internal sealed class SampleProcess : IDisposable
{
    private readonly StringBuilder _output = new();

    private SampleProcess(Process process) => Process = process;

    public Process Process { get; }

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>Starts <c>dotnet samples/NAME/bin/.../NAME.dll ARGS</c>.</summary>
    public static SampleProcess Start(string sample, IEnumerable<string> arguments)
    {
        var dll = SampleAssembly(sample);
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = Path.GetDirectoryName(dll)!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(dll);
        foreach (var arg in arguments)
        {
            start.ArgumentList.Add(arg);
        }

        var result = new SampleProcess(Process.Start(start)!);
        result.Process.OutputDataReceived += (_, e) => result.Append(e.Data);
        result.Process.ErrorDataReceived += (_, e) => result.Append(e.Data);
        result.Process.BeginOutputReadLine();
        result.Process.BeginErrorReadLine();
        return result;
    }

    /// <summary>Polls <paramref name="path"/> until it answers 2xx; fails with the process output when it exits or times out.</summary>
    public async Task WaitUntilHealthyAsync(HttpClient http, string path, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            if (Process.HasExited)
            {
                throw new InvalidOperationException($"The sample exited with {Process.ExitCode}:\n{Output}");
            }

            try
            {
                using var response = await http.GetAsync(path);
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }

            if (deadline.Elapsed > timeout)
            {
                throw new TimeoutException($"The sample did not answer {path} within {timeout.TotalSeconds} s:\n{Output}");
            }

            await Task.Delay(100);
        }
    }

    /// <summary>Waits until the output contains <paramref name="text"/>.</summary>
    public async Task<bool> WaitForOutputAsync(string text, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        while (!Output.Contains(text, StringComparison.Ordinal))
        {
            if (watch.Elapsed > timeout || Process.HasExited)
            {
                return false;
            }

            await Task.Delay(50);
        }

        return true;
    }

    public void Kill()
    {
        if (!Process.HasExited)
        {
            Process.Kill(entireProcessTree: true);
            Process.WaitForExit(10_000);
        }
    }

    public void Dispose()
    {
        Kill();
        Process.Dispose();
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>The sample's own build output, in the configuration the tests were built in.</summary>
    public static string SampleAssembly(string name)
    {
        var output = new DirectoryInfo(AppContext.BaseDirectory);
        string framework = output.Name, configuration = output.Parent!.Name;
        var root = output;
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "Sdxl.Net.sln")))
        {
            root = root.Parent;
        }

        var dll = Path.Combine(root?.FullName ?? throw new DirectoryNotFoundException("Sdxl.Net.sln not found above the test output."),
            "samples", name, "bin", configuration, framework, name + ".dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException($"Build samples/{name} first; expected {dll}.", dll);
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_output)
            {
                _output.AppendLine(line);
            }
        }
    }
}
